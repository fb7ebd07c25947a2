import Foundation
import PipelineCommands

@main
struct Entrypoint {
    /// Not `async`: a run's stage server (`pipeline __stage-server`) must fork its stages while it has one thread,
    /// so it starts before anything else does (an async main starts the concurrency runtime's threads first).
    static func main() {
        PipelineCommand.serveStagesIfAsked()
        Task {
            await PipelineCommand.mainWithExitCodes()
            exit(0)
        }
        dispatchMain()
    }
}
