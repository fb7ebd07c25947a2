import Foundation
import Logging
import PipelineDSL

/// Loads the pipeline of a `pipelines/` folder: compiles its Swift files against `PipelineDSL` (cached), runs the
/// program as its own process, and reads back the manifest it writes — the way SwiftPM loads `Package.swift`.
public struct PipelineLoader: Sendable {
    /// The folder of pipeline sources.
    public let pipelinesDirectory: URL
    /// Where compiled programs are kept (`PIPELINE_HOME/cache/pipelines`).
    public let cacheDirectory: URL
    /// The DSL module and library to compile against.
    public let library: DSLLibrary
    /// The Swift compiler.
    public let swiftc: URL
    private let logger: Logger

    /// The name of the entry file: the one with top-level code, compiled as `main.swift`.
    public static let entryFileNames = ["Pipeline.swift", "main.swift"]

    /// A loader for `pipelinesDirectory` that keeps compiled programs in `cacheDirectory`.
    public init(pipelinesDirectory: URL, cacheDirectory: URL, library: DSLLibrary, swiftc: URL, logger: Logger) {
        self.pipelinesDirectory = pipelinesDirectory.standardizedFileURL
        self.cacheDirectory = cacheDirectory
        self.library = library
        self.swiftc = swiftc
        self.logger = logger
    }

    /// The compiler to use: `PIPELINE_SWIFTC`, else `swiftc` on `PATH`.
    public static func locateCompiler(environment: [String: String]) -> URL? {
        CompilerIdentity.locate(environment: environment)
    }

    /// The manifest the pipeline program declares, compiling the program first unless a compiled copy of these
    /// exact sources, DSL build and compiler is cached.
    public func load() throws(LoadError) -> Manifest {
        let sources = try PipelineSources(directory: pipelinesDirectory)
        let compiler = try CompilerIdentity.of(swiftc, cacheDirectory: cacheDirectory)
        let key = ProgramCacheKey.make(sources: sources, library: library, compiler: compiler)
        let program = cacheDirectory.appending(path: key).appending(path: "pipeline-program")
        if FileManager.default.isExecutableFile(atPath: program.path) {
            logger.debug("pipeline program cached", metadata: ["key": "\(key)"])
        } else {
            try compile(sources, into: program)
        }
        return try run(program)
    }

    private func compile(_ sources: PipelineSources, into program: URL) throws(LoadError) {
        let files = FileManager.default
        let finalDirectory = program.deletingLastPathComponent()
        let work = cacheDirectory.appending(path: "tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        do {
            try files.createDirectory(at: work, withIntermediateDirectories: true)
        } catch {
            throw LoadError(.unwritable, "cannot create \(work.path): \(error.localizedDescription)")
        }
        defer { try? files.removeItem(at: work) }  // a temporary folder; once moved into the cache there is none

        var inputs: [String] = []
        for source in sources.files {
            if source.isEntry && source.url.lastPathComponent != "main.swift" {
                // Top-level code is allowed only in main.swift; #sourceLocation keeps diagnostics on the real file.
                let main = work.appending(path: "main.swift")
                let escaped = source.displayPath.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"")
                let text = "#sourceLocation(file: \"\(escaped)\", line: 1)\n" + source.text
                do {
                    try text.write(to: main, atomically: false, encoding: .utf8)
                } catch {
                    throw LoadError(.unwritable, "cannot write \(main.path): \(error.localizedDescription)")
                }
                inputs.append(main.path)
            } else {
                inputs.append(source.displayPath)
            }
        }
        let output = work.appending(path: "pipeline-program")
        let arguments = [
            "-swift-version", "6", "-module-name", "PipelineProgram", "-diagnostic-style=llvm",
            "-I", library.moduleDirectory.path, "-L", library.libraryDirectory.path, "-lPipelineDSL",
            "-Xlinker", "-rpath", "-Xlinker", library.libraryDirectory.path,
            "-module-cache-path", cacheDirectory.appending(path: "module-cache").path,
        ] + inputs + ["-o", output.path]
        logger.debug("compiling pipelines", metadata: ["swiftc": "\(swiftc.path)", "arguments": "\(arguments)"])
        let started = Date()
        let result: ChildResult
        do {
            result = try ChildResult.capture(swiftc, arguments: arguments)
        } catch {
            throw LoadError(.environment, "cannot run \(swiftc.path): \(error.localizedDescription)")
        }
        guard result.status == 0 else {
            if LoadError.saysWriteFailed(result.output) {
                // A compile that could not write is no fault of the pipeline. The module cache is only a cache: one
                // the failed compile may have left half-written goes, and the next compile makes it anew.
                try? files.removeItem(at: cacheDirectory.appending(path: "module-cache"))  // the error thrown below is the one to tell
                let said = result.output.split(separator: "\n").first { LoadError.saysWriteFailed(String($0)) } ?? ""
                throw LoadError(
                    .unwritable,
                    "cannot compile the pipeline: the compile cache \(cacheDirectory.path) could not be written (\(said.trimmingCharacters(in: .whitespaces))); free space there or set PIPELINE_CACHE_DIR, then try again")
            }
            var lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            while lines.last?.isEmpty == true { lines.removeLast() }
            if lines.isEmpty { lines = ["swiftc exited with status \(result.status) and printed nothing"] }
            throw LoadError(.definition, lines, verbatim: true)
        }
        if !result.output.isEmpty { FileHandle.standardError.write(Data(result.output.utf8)) }
        logger.debug("compiled pipelines", metadata: ["seconds": "\(Date().timeIntervalSince(started))"])
        do {
            try? files.createDirectory(at: finalDirectory.deletingLastPathComponent(), withIntermediateDirectories: true)  // the move reports it
            try files.moveItem(at: work, to: finalDirectory)
        } catch where files.isExecutableFile(atPath: program.path) {
            // Another loader compiled the same sources at the same time; its copy is as good.
        } catch {
            throw LoadError(.unwritable, "cannot keep the compiled pipeline in \(finalDirectory.path): \(error.localizedDescription)")
        }
    }

    private func run(_ program: URL) throws(LoadError) -> Manifest {
        let output = FileManager.default.temporaryDirectory.appending(path: "pipeline-manifest-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: output) }  // a temporary file, read already
        let status: Int32
        do {
            // The program's stdout is the user's `print`: it goes to our stderr so it never mixes with our output.
            status = try ChildResult.run(
                program, arguments: [ManifestOutput.outputFlag, output.path],
                directory: pipelinesDirectory.deletingLastPathComponent(), stdoutToStderr: true)
        } catch {
            throw LoadError(.environment, "cannot run the compiled pipeline \(program.path): \(error.localizedDescription)")
        }
        // No manifest file is the program declaring no pipeline (or stopping first): said below, with its status.
        guard let data = try? Data(contentsOf: output) else {
            if status != 0 {
                throw LoadError(.definition, "the pipeline program in \(pipelinesDirectory.path) stopped with status \(status) before declaring its pipeline (its messages are above)")
            }
            throw LoadError(.definition, "the pipeline program in \(pipelinesDirectory.path) declared no Pipeline(...); the entry file must call Pipeline(\"NAME\") { ... } at the top level")
        }
        let document: ManifestDocument
        do {
            document = try JSONDecoder().decode(ManifestDocument.self, from: data)
        } catch {
            throw LoadError(.environment, "the pipeline program wrote a document this pipeline cannot read (\(error)); is the DSL library from another build?")
        }
        if document.version > Manifest.schemaVersion {
            throw LoadError(.environment, "the pipeline program wrote schema version \(document.version); this pipeline reads up to \(Manifest.schemaVersion)")
        }
        guard document.errors.isEmpty, let manifest = document.plan else {
            throw LoadError(.definition, document.errors.isEmpty ? ["the pipeline program wrote no plan"] : document.errors)
        }
        if status != 0 {
            throw LoadError(.definition, "the pipeline program exited with status \(status) after declaring its pipeline (its messages are above)")
        }
        return manifest
    }
}
