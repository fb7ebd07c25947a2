import CGit2
import Foundation
import HTTP
import Logging
import Hashing

/// A commit a run deploys, resolved to its full SHA.
public struct ResolvedCommit: Sendable, Equatable, Codable {
    /// The full SHA.
    public let sha: String
    /// The author's name and email.
    public let author: String
    /// When it was committed.
    public let time: Date
    /// The first line of its message.
    public let subject: String
}

/// Why the commit to deploy could not be had. Every case is the user's to fix and changes nothing.
public enum SourceError: Error, CustomStringConvertible {
    /// The remote could not be reached or refused us.
    case remote(url: String, reason: String)
    /// No commit starts with that SHA.
    case unknownSHA(String)
    /// Several objects start with that SHA.
    case ambiguousSHA(String, candidates: [String])
    /// The SHA names something other than a commit.
    case notACommit(String, kind: String)
    /// No branch or tag has that name.
    case unknownRef(String, known: [String])
    /// The SHA is not hexadecimal, or too short.
    case invalidSHA(String)
    /// Something else went wrong in libgit2.
    case git(GitError)

    /// One line saying what is wrong and what to do.
    public var description: String {
        switch self {
        case .remote(let url, let reason): "cannot fetch \(URLText.redacted(url)): \(reason)"
        case .unknownSHA(let sha): "no commit \(sha) in the repository (after fetching it); check the SHA, or push the commit first"
        case .ambiguousSHA(let sha, let candidates):
            "SHA \(sha) is ambiguous: it could be \(candidates.joined(separator: ", ")); give more digits"
        case .notACommit(let sha, let kind): "\(sha) is a \(kind), not a commit; give the SHA of a commit"
        case .unknownRef(let ref, let known):
            "no branch or tag '\(ref)' in the repository; it has \(known.isEmpty ? "no branches or tags" : known.prefix(20).joined(separator: ", "))"
        case .invalidSHA(let sha): "'\(sha)' is not a SHA: give 4 to 40 hexadecimal digits"
        case .git(let error): "\(error)"
        }
    }
}

/// A repository to deploy from, kept as a bare mirror in the cache and fetched at the start of each run.
public struct GitSource: Sendable {
    /// The remote: a path, `file://`, `git://`, `https://` or `ssh://` URL.
    public let url: String
    /// The mirror's folder.
    public let mirror: URL
    /// Fetches and their times, at debug level (`pipeline --verbose`).
    static let logger = Logger(label: "pipeline.git")

    /// The source `url`, mirrored under `cache` (`PIPELINE_HOME/cache/git`).
    public init(url: String, cache: URL) {
        let isURL = url.contains("://") || (url.contains("@") && url.contains(":") && !url.hasPrefix("/"))
        self.url = isURL ? url : URL(filePath: url).standardizedFileURL.path
        let withoutQuery = self.url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? self.url
        let components = withoutQuery.split(separator: "/").filter { $0 != ".git" }
        let last = components.last.map { $0.hasSuffix(".git") ? String($0.dropLast(4)) : String($0) }
        let name = (last?.isEmpty ?? true) ? "repo" : last!
        let safe = String(name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }).prefix(40)
        mirror = cache.appending(path: "\(safe)-\(SHA256.hex(self.url).prefix(12)).git")
    }

    /// Fetches the remote into the mirror (made anew if missing or damaged) and resolves `sha`, else `ref`,
    /// else `branch`, to a commit whose tree is readable.
    public func resolve(
        sha: String?, ref: String?, branch: String, credentials: GitCredentials
    ) throws(SourceError) -> ResolvedCommit {
        // A full SHA the mirror has already (a hook's or watch's run, a resume, a rollback) needs no fetch: a
        // commit's content never changes, and the remote may be slow or away.
        if let sha, sha.utf8.count == 40, FileManager.default.fileExists(atPath: mirror.path),
            let known = try? withMirrorLocked({ try Resolver(repository: try Repository.open(mirror)).resolve(sha: sha, ref: nil, branch: branch) })
        {
            Self.logger.debug("\(sha) is in the mirror \(mirror.path) already: not fetched")
            return known
        }
        return try withMirror(credentials: credentials, opening: { try fetch(credentials: credentials, fresh: false) }) {
            try Resolver(repository: $0).resolve(sha: sha, ref: ref, branch: branch)
        }
    }

    /// Opens the mirror, creating it when missing (or when `fresh`), and fetches every branch and tag.
    func fetch(credentials: GitCredentials, fresh: Bool) throws -> Repository {
        LibGit2.ensureInitialised()
        let files = FileManager.default
        if fresh { try? files.removeItem(at: mirror) }
        let repository: Repository
        if files.fileExists(atPath: mirror.path), let opened = try? Repository.open(mirror) {
            repository = opened
        } else {
            try? files.removeItem(at: mirror)
            try files.createDirectory(at: mirror.deletingLastPathComponent(), withIntermediateDirectories: true)
            if let local = localRepositoryPath, (try? cloneLocally(from: local)) != nil, let cloned = try? Repository.open(mirror) {
                repository = cloned
            } else {
                try? files.removeItem(at: mirror)
                repository = try Repository.createBare(mirror)
            }
        }
        if url.hasPrefix("https://") { LibGit2.ensureCertificates() }
        var remote: OpaquePointer?
        try check("git_remote_create_anonymous(\(url))", git_remote_create_anonymous(&remote, repository.handle, url))
        defer { git_remote_free(remote) }
        let context = RemoteContext(credentials: credentials, url: url)
        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.prune = GIT_FETCH_PRUNE
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        context.install(in: &options.callbacks)
        let refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        let started = ContinuousClock.now
        let result = LibGit2.fetching(from: url, timeout: credentials.timeout) {
            withStringArray(refspecs) { array in
                withUnsafePointer(to: &options) { git_remote_fetch(remote, array, $0, "pipeline fetch") }
            }
        }
        let elapsed = ContinuousClock.now - started
        Self.logger.debug(
            "\(result < 0 ? "fetch failed from" : "fetched") \(URLText.redacted(url)) into \(mirror.path)",
            metadata: ["seconds": "\(String(format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))"])
        if result < 0 {
            let error = GitError(call: "git_remote_fetch", code: result)
            if error.isDamage && context.refusal == nil { throw error }
            throw SourceError.remote(url: url, reason: context.refusal ?? error.message)
        }
        // Every fetch leaves a pack; a mirror with many is rolled up (and opened again, so that no handle still
        // lists the packs removed). Failing to roll up loses nothing: the old packs stay until the new one is
        // complete, and the next fetch tries again.
        if let removed = try? PackConsolidation.run(on: repository), removed > 0 {
            return try Repository.open(mirror)
        }
        return repository
    }
}

extension GitSource {
    /// The repository's folder, when the remote is on this machine (a path or a `file://` URL).
    var localRepositoryPath: String? {
        if url.hasPrefix("file://") { return String(url.dropFirst(7)) }
        return url.contains("://") ? nil : url
    }

    /// A first mirror of a repository on this machine: its object files are copied as they are, as
    /// `git clone --local` does, instead of being packed and indexed again through the transport. The fetch that
    /// follows sets the branches and tags.
    func cloneLocally(from path: String) throws(GitError) {
        LibGit2.ensureInitialised()
        var options = git_clone_options()
        git_clone_options_init(&options, UInt32(GIT_CLONE_OPTIONS_VERSION))
        options.bare = 1
        options.local = GIT_CLONE_LOCAL_NO_LINKS
        options.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE.rawValue
        options.remote_cb = { out, repository, name, url, _ in
            git_remote_create_with_fetchspec(out, repository, name, url, "+refs/heads/*:refs/heads/*")
        }
        var cloned: OpaquePointer?
        let result = withUnsafePointer(to: &options) { git_clone(&cloned, path, mirror.path, $0) }
        git_repository_free(cloned)
        try check("git_clone(\(path))", result)
    }
}

/// Calls `body` with a `git_strarray` of `strings`.
func withStringArray<T>(_ strings: [String], _ body: (UnsafePointer<git_strarray>) -> T) -> T {
    var pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
        return body(&array)
    }
}

/// An exclusive `flock` on a file, so two runs never fetch into one mirror at once.
struct FileLock {
    let fd: Int32

    init(_ path: String) throws(SourceError) {
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX) == 0 else {
            throw SourceError.git(GitError(call: "flock(\(path))", message: String(cString: strerror(errno))))
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }

}

