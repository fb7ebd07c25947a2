import PipelineCommands

@main
struct Entrypoint {
    static func main() async {
        await PipelineCommand.mainWithExitCodes()
    }
}
