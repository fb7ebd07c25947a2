import Foundation
import PipelineDSL

/// Takes a run from "asked for" to "ended": records it, waits its turn for the environment's lock, runs its
/// stages, and turns Ctrl-C or SIGTERM into a cancelled run with every stage process stopped.
public final class RunSession: @unchecked Sendable {
    /// Who asks for the run, and how.
    public struct Request: Sendable {
        /// The environment.
        public var environment: String
        /// `--sha`, as given.
        public var sha: String?
        /// `--ref`, or the environment's branch.
        public var ref: String?
        /// The branch being deployed, for conditions.
        public var branch: String?
        /// `cli`, `resume`, `hook`, ...
        public var trigger: String
        /// Who.
        public var user: String
        /// Refuse at once when another run holds the environment.
        public var noWait: Bool
        /// The repository deployed from, when the run has one.
        public var source: String?
        /// The commit deployed, when the run has one.
        public var commit: CommitFacts?
        /// Variables every stage of the run gets on top of the usual ones.
        public var stageEnvironment: [String: String]
        /// Pipeline files the stages read, by path in the pipelines folder, kept in the run folder.
        public var pipelineFiles: [String: Data] = [:]

        /// A request.
        public init(
            environment: String, sha: String?, ref: String?, branch: String?, trigger: String, user: String, noWait: Bool,
            source: String? = nil, commit: CommitFacts? = nil, stageEnvironment: [String: String] = [:]
        ) {
            self.environment = environment
            self.sha = sha
            self.ref = ref
            self.branch = branch
            self.trigger = trigger
            self.user = user
            self.noWait = noWait
            self.source = source
            self.commit = commit
            self.stageEnvironment = stageEnvironment
        }
    }

    /// Why a run did not start.
    public enum Refusal: Error, CustomStringConvertible {
        /// `--no-wait`, and another run holds the environment.
        case busy(RunRecord)
        /// Cancelled while it waited in the queue.
        case cancelledWhileQueued(Int)
        /// Another run of the environment waits at an approval gate.
        case awaitingApproval(RunRecord)

        /// One line saying why, and whose run is in the way.
        public var description: String {
            switch self {
            case .busy(let owner):
                "environment '\(owner.environment)' is busy: run \(owner.id) (pid \(owner.pid ?? 0), started by \(owner.user)) holds it; wait for it, or run without --no-wait to queue"
            case .cancelledWhileQueued(let id): "run \(id) was cancelled while it waited for the environment"
            case .awaitingApproval(let owner):
                "environment '\(owner.environment)' is held by run \(owner.id) (started by \(owner.user)), which waits for approval; decide on it first: `pipeline approve \(owner.environment)` or `pipeline reject \(owner.environment) --reason TEXT`"
            }
        }
    }

    private let store: StateStore
    private let console: any RunConsole
    private let lock = NSLock()
    private var executor: RunExecutor?
    private var cancelled = false
    private var signalSources: [any DispatchSourceSignal] = []

    /// A session recording into `store` and reporting to `console`.
    public init(store: StateStore, console: any RunConsole) {
        self.store = store
        self.console = console
    }

    /// Runs `plan` as a new run (or, given `resuming`, continues that run from its first stage that did not
    /// succeed), and returns the run and how it ended.
    public func execute(
        plan: Plan, request: Request, options: RunOptions, executable: String, secrets: [String: [String: String]],
        environment: [String: String], resuming: RunRecord? = nil
    ) throws -> (RunRecord, RunStatus) {
        try WaitingGate.expireOverdue(store: store, environment: request.environment)
        if let owner = try store.lockOwner(environment: request.environment), owner.status == .waiting, owner.id != resuming?.id {
            throw Refusal.awaitingApproval(owner)
        }
        if request.noWait, let owner = try store.lockOwner(environment: request.environment),
            owner.id != resuming?.id, OwnerLiveness.isAlive(pid: owner.pid, heartbeat: nil)
        {
            throw Refusal.busy(owner)
        }
        trapSignals()
        defer { releaseSignals() }
        let run: RunRecord
        if let resuming {
            StrayProcesses.kill(variable: StrayProcesses.runMarkerVariable, value: resuming.marker)
            try store.adopt(resuming.id, pid: getpid(), trigger: "resume")
            run = try store.run(resuming.id) ?? resuming
        } else {
            run = try store.createRun(
                environment: request.environment, sha: request.sha, ref: request.ref, trigger: request.trigger,
                user: request.user, pid: getpid(), source: request.source, commit: request.commit)
        }
        let folder = RunFolder(root: store.runFolder(run.id))
        if resuming == nil { try folder.create(plan: plan, pipelineFiles: request.pipelineFiles) }
        let heartbeat = Heartbeat(store: store, run: run.id)
        defer { heartbeat.stop() }
        try waitForLock(run: run, noWait: request.noWait)
        if let newer = try newerCommitRun(than: run, plan: plan, request: request, resuming: resuming) {
            let message = "superseded by run \(newer.id) (\(newer.sha.map { String($0.prefix(12)) } ?? "a newer commit")): the environment deploys only the newest commit"
            try store.setRunStatus(run.id, .superseded, message: message)
            try store.addEvent(run.id, stage: nil, kind: "run.superseded", message: message)
            console.note("run \(run.id) \(message)")
            return (try store.run(run.id) ?? run, .superseded)
        }

        let masker = SecretMasker()
        masker.add(SecretResolver.maskedValues(secrets, environment: environment))
        var initial: [String: StageStatus] = [:]
        var attempts: [String: Int] = [:]
        if resuming != nil {
            for record in try store.stageRuns(run.id) {
                attempts[record.stageID] = record.attempts
                if record.status.letsDependentsRun { initial[record.stageID] = record.status }
            }
            try store.addEvent(run.id, stage: nil, kind: "run.resumed", message: "\(initial.count) stages already done")
            console.note("resuming run \(run.id): \(initial.count) of \(plan.stages.count) stages already done")
        }
        let launcher = StageLauncher(
            context: RunContext(
                runID: run.id, environment: plan.environment.name, sha: request.sha ?? run.sha, ref: request.ref ?? run.ref,
                branch: request.branch, marker: run.marker, user: run.user),
            executable: executable, environment: environment.merging(request.stageEnvironment) { _, new in new },
            secrets: secrets)
        let executor = RunExecutor(
            store: store, plan: plan, run: run, folder: folder, options: options, masker: masker, console: console,
            launcher: launcher, initial: initial, attempts: attempts)
        let alreadyCancelled: Bool = lock.withLock {
            self.executor = executor
            return cancelled
        }
        if alreadyCancelled { executor.cancel("cancelled before the first stage") }
        let outcome = executor.execute()
        return (try store.run(run.id) ?? run, outcome)
    }

    /// Triggers that come from new commits rather than a person.
    public static let commitTriggers: Set = ["hook", "watch"]

    /// A newer commit's run queued behind `run`, when the environment deploys only the newest commit.
    private func newerCommitRun(than run: RunRecord, plan: Plan, request: Request, resuming: RunRecord?) throws -> RunRecord? {
        guard resuming == nil, plan.environment.commitQueue == .newestOnly, Self.commitTriggers.contains(request.trigger) else { return nil }
        return try store.runs(environment: run.environment, limit: 200).first {
            $0.id > run.id && $0.status == .queued && Self.commitTriggers.contains($0.trigger) && OwnerLiveness.isAlive(pid: $0.pid, heartbeat: nil)
        }
    }

    private func waitForLock(run: RunRecord, noWait: Bool) throws {
        var announced: Int?
        while true {
            if lock.withLock({ cancelled }) {
                try store.setRunStatus(run.id, .cancelled, message: "cancelled while waiting for the environment")
                throw Refusal.cancelledWhileQueued(run.id)
            }
            switch try store.tryAcquireLock(environment: run.environment, run: run.id) {
            case .acquired:
                return
            case .busy(let owner), .queuedBehind(let owner):
                if owner.status == .waiting {
                    try store.setRunStatus(run.id, .cancelled, message: "run \(owner.id) waits for approval")
                    throw Refusal.awaitingApproval(owner)
                }
                if noWait {
                    try store.setRunStatus(run.id, .cancelled, message: "environment busy with run \(owner.id)")
                    throw Refusal.busy(owner)
                }
                if announced != owner.id {
                    console.note(
                        "waiting for run \(owner.id) (\(owner.status.rawValue), pid \(owner.pid ?? 0), started by \(owner.user)) to finish with \(owner.environment)")
                    announced = owner.id
                }
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
    }

    private func trapSignals() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                self?.cancel(number == SIGINT ? "cancelled (Ctrl-C)" : "cancelled (SIGTERM)")
            }
            source.resume()
            signalSources.append(source)
        }
    }

    private func releaseSignals() {
        for source in signalSources { source.cancel() }
        signalSources.removeAll()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    /// Stops the run: every stage process group gets SIGTERM, then SIGKILL after the grace period.
    public func cancel(_ reason: String) {
        let executor: RunExecutor? = lock.withLock {
            cancelled = true
            return self.executor
        }
        console.note(reason)
        executor?.cancel(reason)
    }
}

/// Tells other runners every two seconds that this run's owner is alive.
final class Heartbeat: @unchecked Sendable {
    private let timer: any DispatchSourceTimer

    init(store: StateStore, run: Int) {
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 2, repeating: 2)
        timer.setEventHandler { try? store.heartbeat(run) }
        timer.resume()
    }

    func stop() {
        timer.cancel()
    }
}
