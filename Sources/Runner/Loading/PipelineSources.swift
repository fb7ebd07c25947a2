import Foundation

/// The Swift files of a pipelines folder, read once.
struct PipelineSources {
    struct File {
        let url: URL
        /// The path relative to the pipelines folder: what the cache key uses.
        let relativePath: String
        /// The path as diagnostics show it: relative to the working folder when under it.
        let displayPath: String
        let text: String
        let isEntry: Bool
    }

    let files: [File]

    init(directory: URL) throws(LoadError) {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LoadError(
                .definition,
                "no pipelines folder at \(directory.path); run from a project with pipelines/, or pass --pipelines DIR")
        }
        let root = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
        var relativePaths: [String] = []
        if let walker = manager.enumerator(at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]) {
            for case let url as URL in walker where url.pathExtension == "swift" {
                let path = url.standardizedFileURL.path
                relativePaths.append(path.hasPrefix(root) ? String(path.dropFirst(root.count)) : url.lastPathComponent)
            }
        }
        relativePaths.sort()
        guard let entry = PipelineLoader.entryFileNames.first(where: relativePaths.contains) else {
            throw LoadError(
                .definition,
                "\(directory.path) has no \(PipelineLoader.entryFileNames[0]): the entry file declares Pipeline(\"NAME\") { ... }")
        }
        let cwd = manager.currentDirectoryPath.hasSuffix("/") ? manager.currentDirectoryPath : manager.currentDirectoryPath + "/"
        var files: [File] = []
        for relative in relativePaths {
            let url = directory.appending(path: relative)
            let text: String
            do {
                text = try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw LoadError(.definition, "cannot read \(url.path) as UTF-8 text: \(error.localizedDescription)")
            }
            let display = url.path.hasPrefix(cwd) ? String(url.path.dropFirst(cwd.count)) : url.path
            files.append(File(url: url, relativePath: relative, displayPath: display, text: text, isEntry: relative == entry))
        }
        self.files = files
    }
}
