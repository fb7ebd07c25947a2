import ArgumentParser
import CSpawn
import Foundation
import PipelineDSL
import Runner
import StageContract
import Stages

extension PipelineCommand {
    /// `pipeline __stage RUN_FOLDER STAGE`: runs one built-in stage; the runner starts it, people do not.
    struct StageCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "__stage", abstract: "Run one built-in stage of a run (used by the runner).",
            shouldDisplay: false)

        @Argument(help: "The run's folder.")
        var runFolder: String

        @Argument(help: "The stage's id.")
        var stage: String

        func run() async throws {
            try await Self.run(runFolder: runFolder, stage: stage)
        }

        /// Runs stage `stage` of the run in `runFolder`; throws the stage's exit status when it is not 0.
        static func run(runFolder: String, stage: String) async throws {
            // stdout is a pipe to the stage log: line by line, so it interleaves with stderr as it happened.
            StageProcessSetup.lineBufferedOutput()
            let context: StageContract.StageContext
            do {
                context = try StageContract.StageContext.decode(
                    runFolder: URL(filePath: runFolder), stage: stage, environment: ProcessInfo.processInfo.environment)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.badInput
            }
            let status = await BuiltinStages.run(context)
            if status != 0 { throw ExitCode(status) }
        }
    }
}

extension PipelineCommand {
    /// `pipeline __stage-server RUN_FOLDER` (started by the runner, once per run, with a socket on stdin): serves
    /// the run's built-in stages, each in a forked child of this process (see the runner's `StageServer`), which
    /// finds the run's plan read already; exits when the runner closes the socket. Returns at once for any other
    /// command line. Called first thing, while the process has one thread.
    public static func serveStagesIfAsked() {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, arguments[1] == "__stage-server" else { return }
        RunFolder(root: URL(filePath: arguments[2])).preloadPlan()
        // The stages that wait when the server starts are forked first; it warms up for the later ones when idle.
        let code = pipeline_stage_server(
            STDIN_FILENO, { folder, stage in runForkedStage(runFolder: String(cString: folder), stage: String(cString: stage)) },
            { BuiltinStages.warmUp() })
        if code != 0 {
            FileHandle.standardError.write(Data("error: the stage server stopped: \(String(cString: strerror(code)))\n".utf8))
        }
        Foundation.exit(code == 0 ? 0 : 1)
    }
}

/// In a child the stage server forked, with the stage's descriptors, directory and environment in place: runs the
/// stage as `pipeline __stage RUN_FOLDER STAGE` would, and exits with its status.
private func runForkedStage(runFolder: String, stage: String) -> Never {
    _ = Uptime.start
    Diagnostics.bootstrap(arguments: [])
    Task {
        do {
            try await PipelineCommand.StageCommand.run(runFolder: runFolder, stage: stage)
            Foundation.exit(0)
        } catch {
            PipelineCommand.exit(withError: error)
        }
    }
    dispatchMain()
}
