import CGit2
import Foundation

/// What a path of a commit holds, by content: the id of its tree (a folder) or blob (a file), and the commit that
/// gave it that content, found along the first-parent history (a build stamps the image with that commit's time,
/// so the same content always builds the same image, whichever later commit it is built from).
public struct PathContent: Sendable, Equatable, Codable {
    /// The path, relative to the repository's root ("" for the root).
    public let path: String
    /// The tree or blob id, or nil when the commit has no such path.
    public let objectID: String?
    /// When the path is a symbolic link: what it points at (as git keeps it, relative to the link's folder).
    public let linkTarget: String?
    /// The oldest commit of the unbroken first-parent line back from the asked commit in which the path held this
    /// content: the commit that last changed it (the search stops at `limit` commits, the last one looked at).
    public let since: CommitSummary
}

extension GitSource {
    /// The content of each of `paths` at `sha`, read from the mirror (which is not fetched), with the commit that
    /// last changed it; at most `limit` commits are walked per path.
    public func content(of paths: [String], at sha: String, limit: Int = 10_000) throws(SourceError) -> [PathContent] {
        try withMirrorLocked {
            LibGit2.ensureInitialised()
            let repository = try Repository.open(mirror)
            return try paths.map { path in try Self.content(of: path, at: sha, in: repository, limit: limit) }
        }
    }

    private static func content(of path: String, at sha: String, in repository: Repository, limit: Int) throws -> PathContent {
        var id = git_oid()
        guard sha.utf8.count == 40, git_oid_fromstrn(&id, sha, 40) == 0 else {
            throw GitError(call: "git_oid_fromstr", message: "'\(sha)' is not a full commit SHA")
        }
        var commit: OpaquePointer?
        _ = try check("git_commit_lookup(\(sha))", git_commit_lookup(&commit, repository.handle, &id))
        let (content, link) = try entry(of: path, in: commit, repository: repository)
        var since = commit
        var walked = 0
        while walked < limit, git_commit_parentcount(since) > 0 {
            var parent: OpaquePointer?
            guard git_commit_parent(&parent, since, 0) == 0 else { break }
            guard (try? entry(of: path, in: parent, repository: repository).id) == content else {  // an unreadable parent ends the line too
                git_commit_free(parent)
                break
            }
            if since != commit { git_commit_free(since) }
            since = parent
            walked += 1
        }
        defer {
            if since != commit { git_commit_free(since) }
            git_commit_free(commit)
        }
        let author = git_commit_author(since).pointee
        let summary = CommitSummary(
            sha: Resolver.hex(git_commit_id(since).pointee), author: author.name.map { String(cString: $0) } ?? "",
            time: Date(timeIntervalSince1970: TimeInterval(git_commit_time(since))),
            subject: git_commit_summary(since).map { String(cString: $0) } ?? "")
        return PathContent(path: path, objectID: content, linkTarget: link, since: summary)
    }

    /// The id of what `path` names in `commit`'s tree ("" the tree itself), nil when it names nothing, and the
    /// link's target when it is a symbolic link.
    private static func entry(of path: String, in commit: OpaquePointer?, repository: Repository) throws -> (id: String?, link: String?) {
        var tree: OpaquePointer?
        _ = try check("git_commit_tree", git_commit_tree(&tree, commit))
        defer { git_tree_free(tree) }
        if path.isEmpty { return (Resolver.hex(git_tree_id(tree).pointee), nil) }
        var entry: OpaquePointer?
        let found = git_tree_entry_bypath(&entry, tree, path)
        if found == GIT_ENOTFOUND.rawValue { return (nil, nil) }
        _ = try check("git_tree_entry_bypath(\(path))", found)
        defer { git_tree_entry_free(entry) }
        let id = git_tree_entry_id(entry)
        guard git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK else { return (Resolver.hex(id!.pointee), nil) }
        var blob: OpaquePointer?
        _ = try check("git_blob_lookup(\(path))", git_blob_lookup(&blob, repository.handle, id))
        defer { git_blob_free(blob) }
        let bytes = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))
        return (Resolver.hex(id!.pointee), String(decoding: bytes, as: UTF8.self))
    }
}
