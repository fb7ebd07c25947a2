import ArgumentParser
import Foundation
import Logging
import Runner

/// Flags every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The pipelines folder.", valueName: "dir"))
    var pipelines: String?

    @Flag(name: .shortAndLong, help: "Print what pipeline does behind the scenes (to stderr).")
    var verbose = false

    /// The logger libraries get: stderr, debug level with `--verbose`.
    func makeLogger() -> Logger {
        var logger = Logger(label: "pipeline") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .warning
        return logger
    }

    func workspace() throws(LoadError) -> Workspace {
        try Workspace.resolve(
            pipelines: pipelines, environment: ProcessInfo.processInfo.environment,
            currentDirectory: URL(filePath: FileManager.default.currentDirectoryPath))
    }
}
