import ArgumentParser
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
