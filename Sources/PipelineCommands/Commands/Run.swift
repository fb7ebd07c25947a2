import ArgumentParser
import Foundation
import Logging
import Git
import PipelineDSL
import Runner
import Stages
import StageContract

extension PipelineCommand {
    /// `pipeline run ENV`: runs the environment's plan.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run an environment's plan: every stage as a child process, in dependency order.",
            discussion: """
                One run per environment at a time: a second run waits for the first (or, with --no-wait, is \
                refused). Ctrl-C or SIGTERM stops every stage and records the run as cancelled (exit 130). Logs, \
                outputs and artifacts are kept in $PIPELINE_HOME/runs/RUN/. At an approval gate the run is recorded \
                as waiting and the command exits with 4 (with --wait it waits in the foreground); `pipeline approve \
                ENV` continues it. Exit codes: 0 succeeded, 1 a stage failed (or the run was rolled back), 2 bad \
                input, 3 the environment is busy, 4 waiting for approval, 74 the run's state or logs could not be \
                recorded, 130 cancelled. A service caught mid-change by Ctrl-C is put back on what it ran before the \
                run (--on-cancel leave leaves it).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The environment to run.")
        var environment: String

        @Option(help: "Deploy this commit (full or abbreviated SHA).")
        var sha: String?

        @Option(help: "Deploy the tip of this branch or tag (default: the environment's branch).")
        var ref: String?

        @Option(
            name: .customLong("only"), parsing: .upToNextOption,
            help: ArgumentHelp("Run only these services' stages (`--only A B`, or `--only A --only B`).", valueName: "service"))
        var only: [String] = []

        @Option(help: "Most stages at once (default: the pipeline's parallelism).")
        var parallel: Int?

        @Flag(help: "Stop starting stages after the first failure.")
        var failFast = false

        @Option(help: .hidden)
        var trigger: String = "cli"

        @Flag(help: "At an approval gate, wait in the foreground instead of exiting with 4.")
        var wait = false

        @Flag(help: "Build every image, even one whose build key (what it is built from) the registry already has.")
        var rebuild = false

        @Flag(help: "Print what would run, in order, and run nothing.")
        var dryRun = false

        @Flag(help: "Start the run on the server you logged in to (`pipeline login`), as your verified user.")
        var server = false

        @OptionGroup var execution: ExecutionOptions

        func validate() throws {
            if sha != nil && ref != nil { throw ValidationError("--sha and --ref name the same thing: give one of them") }
            if server, ref != nil || !only.isEmpty || dryRun || wait || parallel != nil || rebuild {
                throw ValidationError("--server starts the environment's run with at most --sha; --ref, --only, --parallel, --wait, --rebuild and --dry-run are for local runs")
            }
            if let parallel, parallel < 1 { throw ValidationError("--parallel must be at least 1, got \(parallel)") }
        }

        func run() async throws {
            if server {
                return try await ServerCallError.reporting {
                    let client = ServerClient(login: try ServerLogin.load())
                    var fields = ["environment": environment]
                    if let sha { fields["sha"] = sha }
                    let run = try await client.call("POST", "/runs", fields) as? [String: Any]
                    let id = run?["id"] as? Int ?? 0
                    print("run \(id) of \(environment) started on \(client.base): \(client.base)/runs/\(id)")
                }
            }
            do {
                try await execute()
            } catch {
                throw error.reported()
            }
        }

        private func execute() async throws {
            let log = Logger(label: "pipeline.run")
            let loading = try PlanLoading(global)
            let plan = try loading.plan(for: environment).selecting(services: only)
            log.debug("plan of \(environment) loaded: \(plan.stages.count) stages", metadata: ["ms": "\(Uptime.milliseconds)"])
            let processEnvironment = ProcessInfo.processInfo.environment
            let lookup = SecretsManagerLookup(plan.environment, environment: processEnvironment)
            let secrets = try await SecretResolver.resolve(plan, environment: processEnvironment, secretsManager: lookup.value)
            try loading.workspace.prepareHome()
            let resolution = try SourceResolution.resolve(
                plan: plan, workspace: loading.workspace, sha: sha, ref: ref,
                environment: processEnvironment.merging(secrets[SecretResolver.sourceKey] ?? [:]) { _, token in token })
            log.debug("source resolved: \(resolution.commit?.sha ?? "no commit")", metadata: ["ms": "\(Uptime.milliseconds)"])
            if dryRun {
                printDryRun(plan, commit: resolution.commit)
                return
            }
            let store = try StateAccess.open(loading.workspace)
            // A commit's own trigger (a hook, pipeline watch) starts at most one run of an environment per commit.
            if RunSession.commitTriggers.contains(trigger), let sha = resolution.commit?.sha,
                let earlier = try store.deployingRuns(environment: environment, sha: sha).first
            {
                print("run \(earlier.id) already deploys \(sha.prefix(12)) to \(environment) (\(earlier.status.rawValue)); not starting another")
                return
            }
            // An environment that deploys only what another verified: refused here, before anything changes.
            let verified = try VerifiedImages.check(
                plan, sha: resolution.commit?.sha, source: resolution.source, store: store, environment: processEnvironment, rebuild: rebuild)
            let branch = ref ?? (sha == nil ? plan.environment.branch : nil)
            var request = RunSession.Request(
                environment: environment, sha: resolution.commit?.sha ?? sha, ref: branch, branch: branch,
                trigger: trigger, user: StateAccess.currentUser, noWait: execution.noWait,
                source: resolution.source?.url, commit: resolution.facts,
                stageEnvironment: SourceResolution.stageEnvironment(
                    source: resolution.source?.url, workspace: loading.workspace, commit: resolution.facts
                ).merging(execution.stageEnvironment) { _, flag in flag }
                .merging(rebuild ? [StageVariables.rebuild: "1"] : [:]) { _, flag in flag }
                .merging(try VerifiedImages.stageEnvironment(verified)) { _, flag in flag })
            request.pipelineFiles = try Self.templates(of: plan, in: loading.workspace.pipelinesDirectory)
            var options = RunOptions(
                parallelism: parallel ?? plan.parallelism, failFast: failFast, killGrace: execution.killGrace)
            options.waitForApproval = wait
            let outcome = try await RunStart(store: store, execution: execution, environment: processEnvironment)
                .fresh(plan: plan, request: request, secrets: secrets, options: options)
            try ExecutionOptions.finish(outcome)
        }

        /// The task-definition templates the plan's register stages read.
        static func templates(of plan: PipelineDSL.Plan, in folder: URL) throws(LoadError) -> [String: Data] {
            var files: [String: Data] = [:]
            for stage in plan.stages {
                guard case .registerTaskDefinition(let spec) = stage.spec else { continue }
                guard let data = FileManager.default.contents(atPath: folder.appending(path: spec.template).path) else {
                    throw LoadError(.definition, "stage '\(stage.id)': cannot read \(spec.template)")
                }
                files[spec.template] = data
            }
            return files
        }

        private func printDryRun(_ plan: PipelineDSL.Plan, commit: ResolvedCommit?) {
            print("dry run of \(plan.environment.name): \(plan.stages.count) stages, up to \(parallel ?? plan.parallelism) at once; nothing runs")
            if let commit { print("would deploy \(commit.sha) by \(commit.author): \(commit.subject)") }
            for (index, wave) in plan.waves().enumerated() {
                print("\(index + 1). \(wave.joined(separator: ", "))")
            }
        }
    }
}
