import ArgumentParser
import Foundation
import Logging
import Runner

extension PipelineCommand {
    /// Parses the command line and runs the command, mapping a usage error to exit code 2 like any bad input.
    public static func mainWithExitCodes() async {
        _ = Uptime.start
        Diagnostics.bootstrap(arguments: CommandLine.arguments)
        do {
            // A built-in stage (`__stage RUN_FOLDER STAGE`, started by the runner, one process per stage) skips the
            // parser: building the command tree costs a new process a few milliseconds of type lookups, which every
            // stage of every run would pay.
            let arguments = CommandLine.arguments
            if arguments.count == 4, arguments[1] == StageCommand.configuration.commandName {
                try await StageCommand.run(runFolder: arguments[2], stage: arguments[3])
                return
            }
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(Exit.badInput.rawValue)
            }
            exit(withError: error)
        }
    }
}

/// Where the libraries' diagnostics go (the AWS calls with request ids and times, retries, git fetches, the
/// compile cache): stderr, at debug level with `--verbose` (or `PIPELINE_LOG_LEVEL=debug`), else warnings only.
/// The level is handed down in `PIPELINE_LOG_LEVEL`, so a stage process of a verbose run writes its own
/// diagnostics to its stage log.
enum Diagnostics {
    static let variable = "PIPELINE_LOG_LEVEL"

    static func bootstrap(arguments: [String]) {
        let verbose = arguments.dropFirst().prefix { $0 != "--" }.contains { $0 == "-v" || $0 == "--verbose" }
        let named = ProcessInfo.processInfo.environment[variable].flatMap { Logger.Level(rawValue: $0.lowercased()) }
        let level = verbose ? .debug : named ?? .warning
        if verbose { setenv(variable, level.rawValue, 1) }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
