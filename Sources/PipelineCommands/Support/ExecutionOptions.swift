import ArgumentParser
import Foundation
import Runner

/// Flags of the commands that execute a run (`run`, `resume`).
struct ExecutionOptions: ParsableArguments {
    @Flag(help: "Refuse at once when another run holds the environment, instead of waiting.")
    var noWait = false

    @Flag(help: "Print machine-readable events (one JSON object per line) instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Seconds between SIGTERM and SIGKILL when a stage is stopped.", valueName: "seconds"))
    var killGrace: Double = 10

    /// What a deploy does with a service it was changing when the run is cancelled.
    enum OnCancel: String, ExpressibleByArgument, CaseIterable {
        case rollback, leave
    }

    @Option(
        help: ArgumentHelp(
            "When the run is cancelled (Ctrl-C, SIGTERM) while a service's new revision is rolling out or not yet checked healthy: rollback puts it back on what it ran before the run (one UpdateService, not waited for); leave leaves it for `pipeline resume` to finish.",
            valueName: "rollback|leave"))
    var onCancel: OnCancel = .rollback

    /// What the stages of the run are told of these flags.
    var stageEnvironment: [String: String] { ["PIPELINE_ON_CANCEL": onCancel.rawValue] }

    func validate() throws {
        if killGrace < 0 { throw ValidationError("--kill-grace must be 0 or more seconds") }
    }

    /// The console for these flags: JSON events, or text (live on a terminal).
    func makeConsole() -> any RunConsole {
        json ? JSONConsole() : TextConsole(live: isatty(1) == 1)
    }

    /// The running `pipeline` executable, which built-in stages run as.
    var executable: String { DSLLibrary.currentExecutable?.path ?? CommandLine.arguments[0] }

    /// Returns for a succeeded run, throws the exit code of any other ending.
    static func finish(_ outcome: RunStatus) throws {
        switch outcome {
        case .succeeded, .superseded: return
        case .cancelled: throw Exit.cancelled
        case .waiting: throw Exit.waitingForApproval
        default: throw Exit.stageFailed
        }
    }
}
