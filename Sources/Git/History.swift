import CGit2
import Foundation

/// One commit of a range, as an approval shows it.
public struct CommitSummary: Sendable, Equatable, Codable {
    public let sha: String
    public let author: String
    public let time: Date
    public let subject: String
}

extension GitSource {
    /// The commits reachable from `to` and not from `from` (what a deploy of `to` adds to what runs at `from`),
    /// newest first, at most `limit`; read from the mirror, which is not fetched. With `from` nil or unknown to the
    /// mirror, only `to` itself and its ancestors up to `limit`.
    public func commits(from: String?, to: String, limit: Int = 50) throws(SourceError) -> [CommitSummary] {
        guard FileManager.default.fileExists(atPath: mirror.path) else { return [] }
        return try withMirrorLocked {
            LibGit2.ensureInitialised()
            let repository = try Repository.open(mirror)
            var walk: OpaquePointer?
            try check("git_revwalk_new", git_revwalk_new(&walk, repository.handle))
            defer { git_revwalk_free(walk) }
            git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
            var head = try Self.oid(to)
            try check("git_revwalk_push(\(to))", git_revwalk_push(walk, &head))
            if let from, var base = try? Self.oid(from) {
                // A base the mirror does not have (or that is not a commit) hides nothing; the limit still holds.
                _ = git_revwalk_hide(walk, &base)
            }
            var found: [CommitSummary] = []
            var id = git_oid()
            while found.count < limit, git_revwalk_next(&id, walk) == 0 {
                var commit: OpaquePointer?
                guard git_commit_lookup(&commit, repository.handle, &id) == 0 else { continue }
                defer { git_commit_free(commit) }
                let author = git_commit_author(commit).pointee
                found.append(
                    CommitSummary(
                        sha: Resolver.hex(id), author: author.name.map { String(cString: $0) } ?? "",
                        time: Date(timeIntervalSince1970: TimeInterval(git_commit_time(commit))),
                        subject: git_commit_summary(commit).map { String(cString: $0) } ?? ""))
            }
            return found
        }
    }

    private static func oid(_ sha: String) throws -> git_oid {
        guard sha.utf8.count == 40, sha.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { throw GitError(call: "git_oid_fromstr", message: "'\(sha)' is not a full commit SHA") }
        var oid = git_oid()
        try check("git_oid_fromstr(\(sha))", git_oid_fromstrn(&oid, sha, sha.utf8.count))
        return oid
    }
}
