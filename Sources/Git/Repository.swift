import CGit2
import Foundation

/// One open repository; freed with its owner. Unchecked: libgit2 objects may move between threads but are used
/// by one at a time, which the callers keep (a mirror is fetched and read under its file lock, by one task).
public final class Repository: @unchecked Sendable {
    let handle: OpaquePointer
    /// Where it is.
    public let path: URL

    private init(handle: OpaquePointer, path: URL) {
        self.handle = handle
        self.path = path
    }

    deinit {
        git_repository_free(handle)
    }

    /// Opens the repository at `path` (a bare repository or a working tree's).
    public static func open(_ path: URL) throws(GitError) -> Repository {
        LibGit2.ensureInitialised()
        var handle: OpaquePointer?
        try check("git_repository_open(\(path.path))", git_repository_open(&handle, path.path))
        return Repository(handle: handle!, path: path)
    }

    /// Makes a new, empty bare repository at `path`.
    public static func createBare(_ path: URL) throws(GitError) -> Repository {
        LibGit2.ensureInitialised()
        var handle: OpaquePointer?
        try check("git_repository_init(\(path.path))", git_repository_init(&handle, path.path, 1))
        return Repository(handle: handle!, path: path)
    }

    /// The repository that holds `path`, looking upwards like git does; `nil` when there is none.
    public static func discover(from path: URL) -> URL? {
        LibGit2.ensureInitialised()
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        guard git_repository_discover(&buffer, path.path, 0, nil) == 0, let found = buffer.ptr else { return nil }
        return URL(filePath: String(cString: found))
    }
}
