import CGit2

/// libgit2, initialised once per process.
public enum LibGit2 {
    private static let initialised: Int32 = git_libgit2_init()

    /// Makes sure `git_libgit2_init` has run; every entry point of this module calls it first.
    public static func ensureInitialised() {
        _ = initialised
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
    /// The libgit2 function that failed.
    public let call: String
    /// libgit2's return code.
    public let code: Int32
    /// libgit2's message, read right after the failing call.
    public let message: String

    /// Reads `git_error_last()` for the failed `call`.
    public init(call: String, code: Int32) {
        self.call = call
        self.code = code
        if let last = git_error_last(), let text = last.pointee.message {
            message = String(cString: text)
        } else {
            message = "no message (code \(code))"
        }
    }

    /// "git_remote_fetch failed: ..."
    public var description: String { "\(call) failed: \(message)" }
}
