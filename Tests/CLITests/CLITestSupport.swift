import Foundation
import TestSupport

/// One state folder for the tests that load the reference pipelines, so they compile them once.
let referenceHome = TemporaryDirectory("pipeline-cli-home")

/// Runs `pipeline ARGS` in `directory` (the project root by default).
func pipeline(
    _ arguments: String..., in directory: URL = Project.root, environment: [String: String] = [:]
) throws -> ProcessOutput {
    var environment = environment
    if environment["PIPELINE_HOME"] == nil { environment["PIPELINE_HOME"] = referenceHome.url.path }
    return try runProcess(Project.executable, arguments, in: directory, environment: environment)
}

/// The lines of `text` between `start` (a line equal to it) and the next blank line.
func block(_ text: String, startingWith start: String) -> [String] {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let first = lines.firstIndex(where: { $0.hasPrefix(start) }) else { return [] }
    return Array(lines[(first + 1)...].prefix { !$0.isEmpty })
}
