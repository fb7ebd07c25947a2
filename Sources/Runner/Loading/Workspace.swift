import Foundation

/// Where a project's pipelines and state live.
public struct Workspace: Sendable {
    /// The folder of pipeline sources.
    public let pipelinesDirectory: URL
    /// The state folder (`PIPELINE_HOME`): database, run folders, caches.
    public let home: URL
    /// Where compiled pipeline programs are kept: `PIPELINE_CACHE_DIR`, else `PIPELINE_HOME/cache/pipelines`.
    public let programCache: URL

    /// The variable naming the pipelines folder when `--pipelines` is not given.
    public static let pipelinesVariable = "PIPELINE_PIPELINES"
    /// The variable naming the state folder.
    public static let homeVariable = "PIPELINE_HOME"
    /// The variable naming a compile cache shared between state folders (CI, tests).
    public static let cacheVariable = "PIPELINE_CACHE_DIR"

    /// Resolves the folders: `pipelines` (or `PIPELINE_PIPELINES`, or the nearest `pipelines/` at or above
    /// `currentDirectory`), and `PIPELINE_HOME` (or `.pipeline/` beside the pipelines folder).
    public static func resolve(
        pipelines: String?, environment: [String: String], currentDirectory: URL
    ) throws(LoadError) -> Workspace {
        let pipelinesDirectory: URL
        if let given = pipelines ?? environment[pipelinesVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
            pipelinesDirectory = resolve(given, against: currentDirectory)
        } else if let found = nearestPipelinesFolder(from: currentDirectory) {
            pipelinesDirectory = found
        } else {
            throw LoadError(
                .definition,
                "no pipelines/ folder in \(currentDirectory.path) or above it; run from your project, or pass --pipelines DIR")
        }
        let home: URL
        if let given = environment[homeVariable], !given.isEmpty {
            home = resolve(given, against: currentDirectory)
        } else {
            home = pipelinesDirectory.deletingLastPathComponent().appending(path: ".pipeline")
        }
        let cache = environment[cacheVariable].flatMap { $0.isEmpty ? nil : resolve($0, against: currentDirectory) }
        return Workspace(
            pipelinesDirectory: pipelinesDirectory, home: home,
            programCache: cache ?? home.appending(path: "cache/pipelines"))
    }

    /// Makes the state folder, readable by its owner only.
    public func prepareHome() throws(LoadError) {
        do {
            try FileManager.default.createDirectory(
                at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: home.path)
        } catch {
            throw LoadError(.environment, "cannot create the state folder \(home.path): \(error.localizedDescription)")
        }
    }

    private static func resolve(_ path: String, against folder: URL) -> URL {
        (path.hasPrefix("/") ? URL(filePath: path) : folder.appending(path: path)).standardizedFileURL
    }

    private static func nearestPipelinesFolder(from start: URL) -> URL? {
        var folder = start.standardizedFileURL
        while true {
            let candidate = folder.appending(path: "pipelines")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate
            }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { return nil }
            folder = parent
        }
    }
}
