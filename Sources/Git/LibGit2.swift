import CGit2
import CGitSocket
import Foundation

/// libgit2, initialised once per process.
public enum LibGit2 {
    private static let initialised: Int32 = {
        let result = git_libgit2_init()
        // The mirrors live in the state folder, owned by whoever runs pipeline.
        _ = pipeline_git_set_owner_validation(0)
        return result
    }()

    /// A CA file named the usual way, read (a few milliseconds of parsing) only before the first HTTPS fetch and
    /// only when it is not the file libgit2 already read when it started.
    private static let certificatesLoaded: Bool = {
        let environment = ProcessInfo.processInfo.environment
        guard let file = environment["SSL_CERT_FILE"] ?? environment["GIT_SSL_CAINFO"], !file.isEmpty,
            file != defaultCertificates
        else { return false }
        return pipeline_git_set_ssl_cert_locations(file, nil) == 0
    }()

    /// Where Debian's libgit2 reads its CA certificates from when it starts.
    private static let defaultCertificates = "/etc/ssl/certs/ca-certificates.crt"

    /// Makes sure `git_libgit2_init` has run; every entry point of this module calls it first.
    public static func ensureInitialised() {
        _ = initialised
    }

    /// Makes sure the CA file the environment names is used; called before fetching over HTTPS.
    static func ensureCertificates() {
        ensureInitialised()
        _ = certificatesLoaded
    }

    private static let fetches = NSLock()

    /// Runs one fetch from `url`, one at a time in this process. Over git:// libgit2 talks through our socket (see
    /// CGitSocket: it acknowledges at once, which saves 40 ms per negotiation round against git daemon, and gives
    /// up on a remote silent for `timeout` seconds); other protocols keep libgit2's own (libssh2 reaches into
    /// it), so the choice is made per fetch, under the lock.
    static func fetching<T>(from url: String, timeout: Double, _ body: () throws -> T) rethrows -> T {
        ensureInitialised()
        fetches.lock()
        defer { fetches.unlock() }
        guard url.lowercased().hasPrefix("git://") else { return try body() }
        let stall = Int32(clamping: Int((max(timeout, 0.001) * 1000).rounded()))
        _ = pipeline_git_socket_use(1, min(30_000, stall), stall)
        defer { _ = pipeline_git_socket_use(0, 0, 0) }
        return try body()
    }

    /// The version of the libgit2 library loaded at run time.
    public static var version: (major: Int, minor: Int, revision: Int) {
        ensureInitialised()
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        git_libgit2_version(&major, &minor, &revision)
        return (Int(major), Int(minor), Int(revision))
    }
}

/// An error from libgit2, naming the call that failed and libgit2's own message.
public struct GitError: Error, CustomStringConvertible {
    /// The libgit2 function that failed, or what was being done.
    public let call: String
    /// libgit2's return code.
    public let code: Int32
    /// libgit2's error class (`GIT_ERROR_NET`, ...).
    public let errorClass: Int32
    /// libgit2's message, read right after the failing call.
    public let message: String

    /// Reads `git_error_last()` for the failed `call`.
    public init(call: String, code: Int32) {
        self.call = call
        self.code = code
        if let last = git_error_last(), let text = last.pointee.message {
            message = String(cString: text)
            errorClass = last.pointee.klass
        } else {
            message = "no message (code \(code))"
            errorClass = 0
        }
    }

    /// An error of our own making; `damaged` when it means the repository on disk is damaged.
    public init(call: String, message: String, damaged: Bool = false) {
        self.call = call
        self.code = -1
        self.errorClass = damaged ? Int32(GIT_ERROR_ODB.rawValue) : 0
        self.message = message
    }

    /// Whether the error means the repository on disk is damaged (objects, packs, refs, config).
    public var isDamage: Bool {
        [GIT_ERROR_ODB, GIT_ERROR_ZLIB, GIT_ERROR_OBJECT, GIT_ERROR_REPOSITORY, GIT_ERROR_REFERENCE, GIT_ERROR_CONFIG]
            .map { Int32($0.rawValue) }.contains(errorClass)
    }

    /// "git_remote_fetch failed: ..."
    public var description: String { "\(call) failed: \(message)" }
}

/// Calls a libgit2 function and throws its error when it fails.
@discardableResult
func check(_ call: String, _ result: Int32) throws(GitError) -> Int32 {
    guard result >= 0 else { throw GitError(call: call, code: result) }
    return result
}
