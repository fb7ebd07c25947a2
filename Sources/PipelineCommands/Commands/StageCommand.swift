import ArgumentParser
import Foundation
import PipelineDSL
import Runner
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
            // stdout is a pipe to the stage log: line by line, so it interleaves with stderr as it happened.
            StageProcessSetup.lineBufferedOutput()
            let folder = RunFolder(root: URL(filePath: runFolder))
            let plan: PipelineDSL.Plan
            do {
                plan = try folder.readPlan()
            } catch {
                FileHandle.standardError.write(Data("error: cannot read \(folder.planFile.path): \(error)\n".utf8))
                throw Exit.badInput
            }
            guard let spec = plan.stages.first(where: { $0.id == stage }) else {
                FileHandle.standardError.write(Data("error: the plan of \(runFolder) has no stage '\(stage)'\n".utf8))
                throw Exit.badInput
            }
            let status = await BuiltinStages.run(
                spec, plan: plan, runFolder: folder.root, environment: ProcessInfo.processInfo.environment)
            if status != 0 { throw ExitCode(status) }
        }
    }
}
