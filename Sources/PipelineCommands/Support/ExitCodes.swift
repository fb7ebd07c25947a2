import ArgumentParser
import Foundation
import Runner

/// The exit codes `pipeline --help` documents.
enum Exit {
    static let stageFailed = ExitCode(1)
    static let badInput = ExitCode(2)
    static let busy = ExitCode(3)
    static let waitingForApproval = ExitCode(4)
    static let internalError = ExitCode(70)
    /// The run's state or logs could not be recorded (a full disk, an unwritable database), or another runner took
    /// the run over: the runner stopped its stages (EX_IOERR).
    static let notRecorded = ExitCode(74)
    static let cancelled = ExitCode(130)
}

extension LoadError {
    /// Prints the problems to stderr and gives the exit code that goes with them.
    func report() -> ExitCode {
        if verbatim {
            FileHandle.standardError.write(Data((messages.joined(separator: "\n") + "\n").utf8))
            return Exit.badInput
        }
        let heading = messages.count > 1 ? "error: \(messages.count) problems:\n" : ""
        let body = messages.count > 1 ? messages.map { "  - \($0)" } : messages.map { "error: \($0)" }
        FileHandle.standardError.write(Data((heading + body.joined(separator: "\n") + "\n").utf8))
        // Both kinds changed nothing and name what to fix: the user's to act on; an unwritable state is its own code.
        return kind == .unwritable ? Exit.notRecorded : Exit.badInput
    }
}
