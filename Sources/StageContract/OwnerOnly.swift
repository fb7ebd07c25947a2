import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Folders and files readable by their owner only, made with explicit modes and never by changing `umask`: the mask
/// is one per process, so lowering it while other threads check a commit out or start a child process (which
/// inherits it) makes their files owner-only too — a checkout's files then build a different image (a layer records
/// each file's mode), and the same commit no longer gives the same digest.
public enum OwnerOnly {
    /// Makes `url` and any missing folder above it, each mode 0700; one that exists is left as it is.
    public static func createDirectory(_ url: URL) throws {
        var missing: [URL] = []
        var folder = url.standardizedFileURL
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            missing.append(folder)
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { break }
            folder = parent
        }
        for folder in missing.reversed() where mkdir(folder.path, 0o700) != 0 && errno != EEXIST {
            throw failure(folder, errno)
        }
    }

    /// Writes `data` to `url` with mode 0600: into a new file beside it, then renamed over it, so a reader sees the
    /// old contents or the new, never part, and the contents are never readable by others, not even for a moment.
    public static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appending(path: ".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
        try writeNew(data, to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            let error = errno
            unlink(temporary.path)
            throw failure(url, error)
        }
    }

    /// Creates an empty file at `url` with mode 0600 unless one is there; says whether it made one.
    @discardableResult
    public static func createFile(_ url: URL) throws -> Bool {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            if errno == EEXIST { return false }
            throw failure(url, errno)
        }
        close(descriptor)
        return true
    }

    private static func writeNew(_ data: Data, to url: URL) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(url, errno) }
        var written = 0
        let error: Int32? = data.withUnsafeBytes { bytes -> Int32? in
            while written < bytes.count {
                let count = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += count
            }
            return nil
        }
        let closed = close(descriptor) == 0 ? nil : errno
        if let error = error ?? closed {
            unlink(url.path)
            throw failure(url, error)
        }
    }

    private static func failure(_ url: URL, _ code: Int32) -> OwnerOnlyError {
        OwnerOnlyError(path: url.path, reason: String(cString: strerror(code)))
    }
}

/// A folder or file that could not be made or written: which, and what the system said.
public struct OwnerOnlyError: Error, CustomStringConvertible {
    /// The folder or file.
    public let path: String
    /// The system's words for why.
    public let reason: String
    public var description: String { "could not write \(path): \(reason)" }
}
