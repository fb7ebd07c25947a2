import ArgumentParser
import Foundation

extension PipelineCommand {
    /// Parses the command line and runs the command, mapping a usage error to exit code 2 like any bad input.
    public static func mainWithExitCodes() async {
        do {
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
