import CGit2
import Foundation

extension GitSource {
    /// Writes the tree of commit `sha` into `folder` (emptied first), with file modes and symlinks as committed,
    /// and, when `submodules`, each submodule at the commit the tree records (fetched into its own mirror).
    public func checkout(
        sha: String, into folder: URL, submodules: Bool, credentials: GitCredentials
    ) throws(SourceError) {
        // A mirror damaged since the run fetched (a blob the fetch never read, a pack cut short) is made anew and
        // the commit written once more.
        let nested = try withMirror(credentials: credentials, opening: { try Repository.open(mirror) }) { repository in
            try Self.empty(folder)
            return try Self.writeTree(of: sha, from: repository, into: folder, submodules: submodules)
        }
        for submodule in nested {
            let source = GitSource(url: Self.resolve(submodule.url, relativeTo: url), cache: mirror.deletingLastPathComponent())
            _ = try source.withMirrorLocked { try source.fetch(credentials: credentials, fresh: false) }
            do {
                try source.checkout(
                    sha: submodule.sha, into: folder.appending(path: submodule.path), submodules: true,
                    credentials: credentials)
            } catch .unknownSHA {
                throw SourceError.git(
                    GitError(call: "submodule \(submodule.path)", message: "commit \(submodule.sha) is not on any branch or tag of \(source.url)"))
            }
        }
    }

    /// Runs `body` on the mirror `opening` gives, holding the mirror's lock. When the mirror turns out damaged
    /// (objects, packs, refs, config), it is made again from the remote and `body` runs once more, rather than
    /// failing every later run. Every error comes out as a `SourceError`.
    func withMirror<T>(
        credentials: GitCredentials, opening: () throws -> Repository, _ body: (Repository) throws -> T
    ) throws(SourceError) -> T {
        try withMirrorLocked {
            do {
                return try body(try opening())
            } catch let error as GitError where error.isDamage {
                return try body(try fetch(credentials: credentials, fresh: true))
            }
        }
    }

    /// Runs `body` holding the mirror's lock, with every error as a `SourceError`.
    func withMirrorLocked<T>(_ body: () throws -> T) throws(SourceError) -> T {
        let lock = try FileLock(mirror.path + ".lock")
        defer { lock.release() }
        do {
            return try body()
        } catch let error as SourceError {
            throw error
        } catch let error as GitError {
            throw SourceError.git(error)
        } catch {
            throw SourceError.git(GitError(call: "the mirror \(mirror.path)", message: "\(error)"))
        }
    }

    private static func empty(_ folder: URL) throws {
        let files = FileManager.default
        try files.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in try files.contentsOfDirectory(atPath: folder.path) {
            try files.removeItem(at: folder.appending(path: name))
        }
    }

    /// Checks the tree out; returns the submodules it records.
    private static func writeTree(
        of sha: String, from repository: Repository, into folder: URL, submodules: Bool
    ) throws -> [(path: String, url: String, sha: String)] {
        var oid = git_oid()
        try check("git_oid_fromstr(\(sha))", git_oid_fromstr(&oid, sha))
        var commit: OpaquePointer?
        let found = git_commit_lookup(&commit, repository.handle, &oid)
        if found == GIT_ENOTFOUND.rawValue { throw SourceError.unknownSHA(sha) }
        try check("git_commit_lookup(\(sha))", found)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try check("git_commit_tree", git_commit_tree(&tree, commit))
        defer { git_tree_free(tree) }

        let gitlinks = try TreeWriter(repository: repository, commit: oid).write(tree: tree!, into: folder)
        guard submodules, !gitlinks.isEmpty else { return [] }
        return try recordedSubmodules(tree: tree!, repository: repository)
    }

    /// The submodules `.gitmodules` names, with the commit the tree records for each.
    private static func recordedSubmodules(
        tree: OpaquePointer, repository: Repository
    ) throws -> [(path: String, url: String, sha: String)] {
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, ".gitmodules") == 0 else { return [] }
        defer { git_tree_entry_free(entry) }
        var blob: OpaquePointer?
        try check("git_blob_lookup(.gitmodules)", git_blob_lookup(&blob, repository.handle, git_tree_entry_id(entry)))
        defer { git_blob_free(blob) }
        let text = String(
            decoding: UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob))),
            as: UTF8.self)
        var found: [(path: String, url: String, sha: String)] = []
        for module in GitModules.parse(text) {
            var link: OpaquePointer?
            guard git_tree_entry_bypath(&link, tree, module.path) == 0 else { continue }
            defer { git_tree_entry_free(link) }
            guard git_tree_entry_filemode(link) == GIT_FILEMODE_COMMIT else { continue }
            found.append((module.path, module.url, Resolver.hex(git_tree_entry_id(link).pointee)))
        }
        return found
    }

    /// A submodule URL relative to its superproject (`../lib.git`) made absolute.
    static func resolve(_ submodule: String, relativeTo base: String) -> String {
        guard submodule.hasPrefix("./") || submodule.hasPrefix("../") else { return submodule }
        var parts = base.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for piece in submodule.split(separator: "/") {
            switch piece {
            case ".": continue
            case "..": if parts.count > 1 { parts.removeLast() }
            default: parts.append(String(piece))
            }
        }
        return parts.joined(separator: "/")
    }
}

/// The `[submodule "NAME"]` sections of a `.gitmodules` file.
enum GitModules {
    static func parse(_ text: String) -> [(path: String, url: String)] {
        var modules: [(path: String, url: String)] = []
        var path: String?
        var url: String?
        func flush() {
            if let path, let url { modules.append((path, url)) }
            path = nil
            url = nil
        }
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                flush()
            } else if let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces)
                let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if key == "path" { path = value }
                if key == "url" { url = value }
            }
        }
        flush()
        return modules
    }
}
