import Foundation
import Git
import PipelineDSL
import Runner
import StageContract
import Stages

/// The one way the commands start a run or continue one (`run`, `resume`, `approve`, `rollback`; hooks and
/// `watch` start `pipeline run`): the plan's secrets read, the console and its notifications wired, the session
/// run and awaited, the notifications delivered, a waiting run's notice printed. Returns how the run ended, for
/// `ExecutionOptions.finish`.
struct RunStart {
    let store: StateStore
    let execution: ExecutionOptions
    /// The runner's environment.
    let environment: [String: String]

    /// Starts `plan` as a new run. `secrets` are the plan's resolved secrets when the caller read them already (it
    /// needed the repository's token first); nil reads them here.
    func fresh(
        plan: Plan, request: RunSession.Request, secrets: [String: [String: String]]? = nil, options: RunOptions? = nil
    ) async throws -> RunStatus {
        try await go(plan: plan, request: request, secrets: secrets, options: options ?? RunOptions(parallelism: plan.parallelism, killGrace: execution.killGrace), resuming: nil)
    }

    /// Continues `record`, which this process owns through `lease`, from its first stage that did not succeed, with
    /// the plan it started with.
    func continuing(_ record: RunRecord, lease: RunLease, workspace: Workspace, trigger: String) async throws -> RunStatus {
        let plan = try PipelineCommand.Resume.plan(of: record.id, store: store)
        // An environment that deploys only what another verified is checked again, now: its images are taken at the
        // digests verified there, never at whatever their build key names in the registry by then.
        var verified: [String: String] = [:]
        if plan.environment.verifiedIn != nil {
            let source = record.source.map { GitSource(url: $0, cache: SourceResolution.cache(workspace)) }
            verified = try VerifiedImages.check(plan, sha: record.sha, source: source, store: store, environment: environment, rebuild: false)
        }
        let request = RunSession.Request(
            environment: record.environment, sha: record.sha, ref: record.ref, branch: record.ref,
            trigger: trigger, user: StateAccess.currentUser, noWait: execution.noWait,
            stageEnvironment: SourceResolution.stageEnvironment(source: record.source, workspace: workspace, commit: record.commit)
                .merging(execution.stageEnvironment) { _, flag in flag }
                .merging(try VerifiedImages.stageEnvironment(verified)) { _, flag in flag })
        return try await go(
            plan: plan, request: request, secrets: nil, options: RunOptions(parallelism: plan.parallelism, killGrace: execution.killGrace),
            resuming: lease)
    }

    private func go(
        plan: Plan, request: RunSession.Request, secrets: [String: [String: String]]?, options: RunOptions, resuming: RunLease?
    ) async throws -> RunStatus {
        var request = request
        // A run the CLI starts is audited as the local, unverified identity that started it; one `pipeline serve`
        // started (PIPELINE_STARTED_BY) the server audited already, as the user it verified.
        if (environment["PIPELINE_STARTED_BY"] ?? "").isEmpty { request.auditAs = .local }
        let lookup = SecretsManagerLookup(plan.environment, environment: environment)
        var secrets = secrets
        if secrets == nil { secrets = try await SecretResolver.resolve(plan, environment: environment, secretsManager: lookup.value) }
        let console = await NotifyingConsole.make(execution.makeConsole(), plan: plan, store: store, environment: environment, lookup: lookup)
        fflush(nil)  // what the command printed so far comes before the run's own output
        let outcome: (RunRecord, RunStatus)
        do {
            outcome = try await RunSession(store: store, console: console).run(
                plan: plan, request: request, options: options, executable: execution.executable,
                secrets: secrets!.merging(["(notifications)": console.secretsByName]) { a, _ in a }, environment: environment,
                resuming: resuming)
        } catch {
            await console.delivered()
            throw error
        }
        await console.delivered()
        let (record, status) = outcome
        if status == .waiting {
            await GateChanges.keep(
                for: record, plan: plan, stageEnvironment: request.stageEnvironment, environment: environment, secrets: secrets ?? [:], store: store)
            print(try ApprovalText.waitingNotice(record, store: store), terminator: "")
        }
        return status
    }
}
