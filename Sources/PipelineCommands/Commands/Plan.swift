import ArgumentParser
import Foundation
import PipelineDSL
import Runner

extension PipelineCommand {
    /// `pipeline plan ENV`: what a run of that environment would do.
    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "Print the plan of an environment: its stages, in the order they run.",
            discussion: """
                Text groups the stages by service, in dependency order, with each stage's kind, key inputs, \
                timeout and gates. --json prints the plan every other command runs (schema: docs/plan-schema.md).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The environment, as the pipeline names it (see `pipeline list`).")
        var environment: String

        @Flag(help: "Print the plan as JSON.")
        var json = false

        func run() async throws {
            let plan: PipelineDSL.Plan
            do {
                plan = try PlanLoading(global).plan(for: environment)
            } catch {
                throw error.report()
            }
            if json {
                print(try JSONOutput.string(plan))
            } else {
                print(PlanText(plan).render(), terminator: "")
            }
        }
    }
}
