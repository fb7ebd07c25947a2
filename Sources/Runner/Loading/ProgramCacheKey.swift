import Foundation
import Hashing

/// What identifies the Swift compiler: its `--version` text, remembered per binary so that a cached load
/// does not start the compiler.
struct CompilerIdentity {
    let path: String
    let version: String

    static func of(_ swiftc: URL, cacheDirectory: URL) throws(LoadError) -> CompilerIdentity {
        let resolved = swiftc.resolvingSymlinksInPath()
        guard let stamp = FileStamp(resolved) else {
            throw LoadError(.environment, "no Swift compiler at \(swiftc.path); install Swift or set PIPELINE_SWIFTC")
        }
        let remembered = cacheDirectory.appending(path: "compilers")
            .appending(path: SHA256.hex("\(resolved.path)\n\(stamp)"))
        // A cache of `swiftc --version`: unreadable is the same as not remembered, and asked again.
        if let version = try? String(contentsOf: remembered, encoding: .utf8) {
            return CompilerIdentity(path: resolved.path, version: version)
        }
        let result: ChildResult
        do {
            result = try ChildResult.capture(swiftc, arguments: ["--version"])
        } catch {
            throw LoadError(.environment, "cannot run \(swiftc.path) --version: \(error.localizedDescription)")
        }
        guard result.status == 0 else {
            throw LoadError(.environment, "\(swiftc.path) --version failed: \(result.output)")
        }
        // Remembering only saves the next load 20 ms; a cache that cannot be written costs that and no more.
        try? FileManager.default.createDirectory(
            at: remembered.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? result.output.write(to: remembered, atomically: true, encoding: .utf8)
        return CompilerIdentity(path: resolved.path, version: result.output)
    }

    static func locate(environment: [String: String]) -> URL? {
        if let path = environment["PIPELINE_SWIFTC"], !path.isEmpty { return URL(filePath: path) }
        for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = URL(filePath: String(folder)).appending(path: "swiftc")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}

/// Size and modification time of a file: enough to notice a rebuilt library or an upgraded compiler.
struct FileStamp: CustomStringConvertible {
    let size: UInt64
    let modified: Double

    init?(_ url: URL) {
        // No readable file is no stamp: the callers say what is missing.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            let size = attributes[.size] as? NSNumber, let modified = attributes[.modificationDate] as? Date
        else { return nil }
        self.size = size.uint64Value
        self.modified = modified.timeIntervalSince1970
    }

    var description: String { "\(size) \(modified)" }
}

/// The name a compiled pipeline program is cached under: a SHA-256 of the sources, the DSL build and the compiler.
enum ProgramCacheKey {
    static func make(sources: PipelineSources, library: DSLLibrary, compiler: CompilerIdentity) -> String {
        let digest = SHA256()
        func add(_ text: String) {
            digest.update(Array(text.utf8))
            digest.update([0])
        }
        add("pipeline-program 1")
        for file in sources.files {
            add(file.relativePath)
            add(file.isEntry ? "entry" : "helper")
            add(file.text)
        }
        for url in library.identityFiles {
            add(url.path)
            add(FileStamp(url)?.description ?? "missing")
        }
        add(compiler.path)
        add(compiler.version)
        return digest.finish().hexString
    }
}
