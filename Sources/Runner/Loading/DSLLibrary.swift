import Foundation

/// Where the `PipelineDSL` module and library that pipelines are compiled against live.
public struct DSLLibrary: Sendable, Equatable {
    /// The folder holding `PipelineDSL.swiftmodule` (passed as `-I`).
    public let moduleDirectory: URL
    /// The folder holding `libPipelineDSL.so` (passed as `-L` and as the program's rpath).
    public let libraryDirectory: URL

    /// The environment variable that points at a folder of either layout, ahead of any other.
    public static let environmentVariable = "PIPELINE_DSL_PATH"

    static let libraryFileName = "libPipelineDSL.so"
    static let moduleName = "PipelineDSL.swiftmodule"

    /// The files whose change means compiled pipelines must be compiled again.
    var identityFiles: [URL] {
        [moduleDirectory.appending(path: Self.moduleName), libraryDirectory.appending(path: Self.libraryFileName)]
    }

    /// The library for the running program: `PIPELINE_DSL_PATH`, else next to the executable — an installed
    /// copy (`PREFIX/bin/pipeline` with `PREFIX/lib/pipeline/`) or a SwiftPM build folder.
    public static func locate(environment: [String: String], executable: URL?) throws(LoadError) -> DSLLibrary {
        if let path = environment[environmentVariable], !path.isEmpty {
            let folder = URL(filePath: path)
            guard let found = find(in: folder) else {
                throw LoadError(
                    .environment,
                    "\(environmentVariable)=\(path) holds no \(moduleName) and \(libraryFileName); point it at the build folder (.build/debug) or PREFIX/lib/pipeline")
            }
            return found
        }
        guard let executable else {
            throw LoadError(.environment, "cannot tell where the pipeline executable is; set \(environmentVariable)")
        }
        let binDirectory = executable.resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            binDirectory.deletingLastPathComponent().appending(path: "lib/pipeline"),
            binDirectory,
        ]
        for candidate in candidates {
            if let found = find(in: candidate) { return found }
        }
        throw LoadError(
            .environment,
            "the PipelineDSL library is not next to \(executable.path) (looked in \(candidates.map(\.path).joined(separator: ", "))); rebuild with runner/setup or set \(environmentVariable)")
    }

    /// The library in `folder`, laid out as an installed copy (module and library side by side) or as a SwiftPM
    /// build folder (the module under `Modules/`).
    public static func find(in folder: URL) -> DSLLibrary? {
        let files = FileManager.default
        guard files.fileExists(atPath: folder.appending(path: libraryFileName).path) else { return nil }
        for moduleDirectory in [folder, folder.appending(path: "Modules")]
        where files.fileExists(atPath: moduleDirectory.appending(path: moduleName).path) {
            return DSLLibrary(moduleDirectory: moduleDirectory, libraryDirectory: folder)
        }
        return nil
    }

    /// The running executable, from `/proc/self/exe` where there is one.
    public static var currentExecutable: URL? {
        // Without /proc (not Linux), Foundation's answer below.
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(filePath: path)
        }
        return Bundle.main.executableURL
    }
}
