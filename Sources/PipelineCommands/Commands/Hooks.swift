import ArgumentParser
import Foundation
import Git
import PipelineDSL
import Runner
import Stages
import StageContract

extension PipelineCommand {
    /// `pipeline hooks ...`: runs on every commit, through git hooks.
    struct HooksGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hooks", abstract: "Start runs from git hooks on every commit to a mapped branch.",
            subcommands: [HooksInstall.self, HooksFire.self])
    }

    /// `pipeline hooks install [--repo PATH]`.
    struct HooksInstall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install",
            abstract: "Install a git hook that starts a run for every environment whose branch moved.",
            discussion: """
                In a bare repository (the one the team pushes to) it installs post-receive; in a working repository, \
                post-commit. The hook runs `pipeline hooks fire`, which starts `pipeline run ENV --sha NEW` in the \
                background for each environment whose branch is the one that moved, and returns at once; the runs \
                log to $PIPELINE_HOME/hooks.log and their run folders. An existing hook that pipeline did not write \
                is kept: the install is refused.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The repository (default: the one holding pipelines/).", valueName: "path"))
        var repo: String?

        func run() async throws {
            do {
                let workspace = try global.workspace()
                try workspace.prepareHome()
                let path = repo.map { URL(filePath: $0).standardizedFileURL }
                    ?? Repository.discover(from: workspace.pipelinesDirectory)
                guard let path else {
                    throw LoadError(.definition, "\(workspace.pipelinesDirectory.path) is not in a git repository; name one with --repo")
                }
                let gitDirectory: URL
                let bare: Bool
                if FileManager.default.fileExists(atPath: path.appending(path: ".git").path) {
                    gitDirectory = path.appending(path: ".git")
                    bare = false
                } else if path.lastPathComponent == ".git" {
                    gitDirectory = path
                    bare = false
                } else if FileManager.default.fileExists(atPath: path.appending(path: "HEAD").path),
                    FileManager.default.fileExists(atPath: path.appending(path: "objects").path)
                {
                    gitDirectory = path
                    bare = true
                } else {
                    throw LoadError(.definition, "\(path.path) is not a git repository")
                }
                let name = bare ? "post-receive" : "post-commit"
                let hook = gitDirectory.appending(path: "hooks/\(name)")
                // An unreadable hook cannot be written either: the write below says so.
                if let existing = try? String(contentsOf: hook, encoding: .utf8), !existing.contains(Self.marker) {
                    throw LoadError(
                        .definition, "\(hook.path) exists and was not written by pipeline; add `\(Self.command(workspace)) hooks fire` to it by hand")
                }
                try FileManager.default.createDirectory(at: hook.deletingLastPathComponent(), withIntermediateDirectories: true)
                let fire = "\(Self.command(workspace)) hooks fire"
                let body = bare
                    ? "while read old new ref; do\n  case \"$ref\" in refs/heads/*) \(fire) \"${ref#refs/heads/}\" \"$new\" ;; esac\ndone\n"
                    : "branch=$(git symbolic-ref --short -q HEAD) || exit 0\n\(fire) \"$branch\" \"$(git rev-parse HEAD)\"\n"
                try "#!/bin/sh\n# \(Self.marker): starts the runs of the environments whose branch moved, in the background.\n\(body)"
                    .write(to: hook, atomically: true, encoding: .utf8)
                chmod(hook.path, 0o755)
                print("installed \(hook.path): every \(bare ? "push" : "commit") to a mapped branch starts its environment's run")
            } catch {
                throw error.reported()
            }
        }

        static let marker = "installed by pipeline hooks install"

        /// The command line the hook runs: this executable, with the pipelines folder and state folder fixed.
        static func command(_ workspace: Workspace) -> String {
            let executable = DSLLibrary.currentExecutable?.path ?? CommandLine.arguments[0]
            return "PIPELINE_PIPELINES=\(quote(workspace.pipelinesDirectory.path)) PIPELINE_HOME=\(quote(workspace.home.path)) \(quote(executable))"
        }

        static func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    }

    /// `pipeline hooks fire BRANCH SHA`: what the hook runs.
    struct HooksFire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fire",
            abstract: "Start, in the background, the run of every environment that deploys BRANCH, for commit SHA.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The branch that moved.")
        var branch: String

        @Argument(help: "Its new commit.")
        var sha: String

        func run() async throws {
            do {
                guard !sha.allSatisfy({ $0 == "0" }) else { return }  // a deleted branch
                let loading = try PlanLoading(global)
                let manifest = try loading.manifest()
                let environments = manifest.environments.filter { $0.branch == branch }.map(\.name)
                guard !environments.isEmpty else { return }
                try loading.workspace.prepareHome()
                for environment in environments {
                    try CommitRuns.start(environment: environment, sha: sha, trigger: "hook", workspace: loading.workspace)
                    print("pipeline: started \(environment) for \(sha.prefix(12)) (\(branch)); see `pipeline status`")
                }
            } catch {
                throw error.reported()
            }
        }
    }

    /// `pipeline watch [--interval SECONDS] [--once]`.
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Poll the source repository and start runs for new commits on the environments' branches.",
            discussion: """
                Each poll fetches the source repository's branches through libgit2 and starts `pipeline run ENV --sha \
                TIP` in the background for every environment whose branch tip has no run yet. Runs until stopped \
                (Ctrl-C), or after one poll with --once. A poll that fails (a broken pipeline, an unreachable \
                remote) is reported and the next one tries again; with --once its error is the exit code.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: "Seconds between polls.")
        var interval: Double = 30

        @Flag(help: "Poll once and exit.")
        var once = false

        func validate() throws {
            if interval < 1 { throw ValidationError("--interval must be at least 1 second") }
        }

        func run() async throws {
            do {
                let loading = try PlanLoading(global)
                try loading.workspace.prepareHome()
                let unverified = UnverifiedCommits()
                while true {
                    do {
                        try await poll(loading, unverified: unverified)
                    } catch {
                        if once { throw error }
                        // A broken pipeline pushed to the branch, a state database briefly locked: said, and the
                        // next poll tries again; a watcher under systemd must not die of one bad commit.
                        _ = error.reported()
                        FileHandle.standardError.write(Data("\(Dates.format(Date())) this poll failed; watching on, next poll in \(Int(interval))s\n".utf8))
                    }
                    if once { return }
                    try await Task.sleep(for: .seconds(interval))
                }
            } catch {
                throw error.reported()
            }
        }

        private func poll(_ loading: PlanLoading, unverified: UnverifiedCommits) async throws {
            let manifest = try loading.manifest()
            let store = try StateAccess.open(loading.workspace)
            let environment = ProcessInfo.processInfo.environment
            for spec in manifest.environments {
                guard let plan = manifest.plan(for: spec.name) else { continue }
                let resolution: SourceResolution
                do throws(LoadError) {
                    var sourceEnvironment = environment
                    if let reference = plan.source.token {
                        let lookup = SecretsManagerLookup(plan.environment, environment: environment)
                        do {
                            sourceEnvironment[GitTokenVariable.name] = try await SecretResolver.sourceToken(
                                reference, environment: environment, secretsManager: lookup.value)
                        } catch {
                            throw LoadError(.definition, "the repository's token \(error)")
                        }
                    }
                    resolution = try SourceResolution.resolve(
                        plan: plan, workspace: loading.workspace, sha: nil, ref: spec.branch, environment: sourceEnvironment)
                } catch {
                    // One environment's branch missing (or its remote down) does not stop the others.
                    FileHandle.standardError.write(Data("\(Dates.format(Date())) \(spec.name): \(error.messages.joined(separator: "; "))\n".utf8))
                    continue
                }
                guard let sha = resolution.commit?.sha else { continue }
                if try !store.deployingRuns(environment: spec.name, sha: sha).isEmpty { continue }
                if let from = plan.environment.verifiedIn {
                    // A commit the other environment has not verified would be refused: said once, tried each poll.
                    do {
                        _ = try VerifiedImages.check(plan, sha: sha, source: resolution.source, store: store, environment: environment, rebuild: false, quiet: true)
                    } catch {
                        if unverified.shas.insert("\(spec.name) \(sha)").inserted {
                            print("\(Dates.format(Date())) \(spec.name): new commit \(sha.prefix(12)) on \(spec.branch) is not verified in \(from) yet; its run starts once it is")
                        }
                        continue
                    }
                }
                try CommitRuns.start(environment: spec.name, sha: sha, trigger: "watch", workspace: loading.workspace)
                print("\(Dates.format(Date())) \(spec.name): new commit \(sha.prefix(12)) on \(spec.branch); run started")
            }
        }
    }
}

/// The commits `pipeline watch` has said it waits for (so that it says so once, not on every poll).
final class UnverifiedCommits {
    var shas: Set<String> = []
}

/// Starting runs for commits, in the background.
enum CommitRuns {
    /// `pipeline run ENV --sha SHA --trigger TRIGGER` in a session of its own, output appended to hooks.log.
    static func start(environment: String, sha: String, trigger: String, workspace: Workspace) throws {
        var variables = ProcessInfo.processInfo.environment
        variables["PIPELINE_PIPELINES"] = workspace.pipelinesDirectory.path
        variables["PIPELINE_HOME"] = workspace.home.path
        // A hook runs with git's variables set for its own repository; the run must not inherit them.
        for key in variables.keys where key.hasPrefix("GIT_") { variables[key] = nil }
        try DetachedProcess.start(
            DSLLibrary.currentExecutable?.path ?? CommandLine.arguments[0], ["run", environment, "--sha", sha, "--trigger", trigger],
            environment: variables, log: workspace.home.appending(path: "hooks.log"))
    }
}
