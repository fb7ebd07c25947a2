import ArgumentParser
import Foundation
import Git
import Runner

extension PipelineCommand {
    /// `pipeline checkout REPOSITORY DIR`: what a run's checkout does, outside a run.
    struct Checkout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "checkout",
            abstract: "Fetch a repository into its mirror and check one commit out into a folder, as a run does.",
            discussion: """
                Uses the mirror in $PIPELINE_HOME/cache/git, like runs. For diagnosis and benchmarks: prints the \
                commit it resolved. The folder is emptied first.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "A path, file://, git://, https:// or ssh:// URL.")
        var repository: String

        @Argument(help: "The folder to check out into.")
        var folder: String

        @Option(help: "The commit (full or abbreviated SHA).")
        var sha: String?

        @Option(help: "A branch or tag (default: main).")
        var ref: String?

        @Flag(help: "Leave submodules out.")
        var noSubmodules = false

        func validate() throws {
            if sha != nil && ref != nil { throw ValidationError("--sha and --ref name the same thing: give one of them") }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            if let problem = GitCredentials.problem(in: environment) { throw LoadError(.definition, problem).reported() }
            do {
                let home = environment[Workspace.homeVariable].flatMap { $0.isEmpty ? nil : URL(filePath: $0) }
                    ?? (try? global.workspace().home) ?? URL(filePath: ".pipeline")  // only where the mirror cache goes
                let source = GitSource(url: repository, cache: home.appending(path: "cache/git"))
                let credentials = GitCredentials.fromEnvironment(environment)
                let commit = try source.resolve(sha: sha, ref: ref, branch: "main", credentials: credentials)
                let target = URL(filePath: folder, relativeTo: URL(filePath: FileManager.default.currentDirectoryPath + "/"))
                try source.checkout(sha: commit.sha, into: target, submodules: !noSubmodules, credentials: credentials)
                print("\(commit.sha) \(commit.subject)")
            } catch {
                throw LoadError(.definition, "\(error)").reported()
            }
        }
    }
}
