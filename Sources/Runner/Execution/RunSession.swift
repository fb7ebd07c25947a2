import Foundation
import Logging
import PipelineDSL
import StageContract

/// Takes a run from "asked for" to "ended": records it, waits its turn for the environment's lock, runs its
/// stages, and turns Ctrl-C or SIGTERM into a cancelled run with every stage process stopped.
/// Unchecked: its mutable state (the executor of the run under way, the signal sources) is set and read under
/// `lock` by the run's thread and the signal handlers' queue.
public final class RunSession: @unchecked Sendable {
    /// Where a run's time goes, at debug level (`--verbose`).
    static let logger = Logger(label: "pipeline.run")

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
        /// How the starter is known, for the audit entry the new run gets; nil writes none (the server audits the
        /// runs it starts itself, with the identity it verified).
        public var auditAs: IdentityKind?

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
    private var failure: RecordingFailure?
    private var signalSources: [any DispatchSourceSignal] = []

    /// A session recording into `store` and reporting to `console`.
    public init(store: StateStore, console: any RunConsole) {
        self.store = store
        self.console = console
    }

    /// Runs `plan` as a new run (or, given the lease of a run this process took over with `takeOwnership`,
    /// continues that run from its first stage that did not succeed), and returns the run and how it ended. Throws
    /// `RecordingFailure` when the run's state or logs could not be recorded, or another owner took it over: the
    /// run's stages were stopped.
    public func execute(
        plan: Plan, request: Request, options: RunOptions, executable: String, secrets: [String: [String: String]],
        environment: [String: String], resuming: RunLease? = nil
    ) throws -> (RunRecord, RunStatus) {
        try WaitingGate.expireOverdue(store: store, environment: request.environment)
        if let owner = try store.lockOwner(environment: request.environment), owner.status == .waiting, owner.id != resuming?.run {
            throw Refusal.awaitingApproval(owner)
        }
        if request.noWait, let owner = try store.liveLockOwner(environment: request.environment), owner.id != resuming?.run {
            throw Refusal.busy(owner)
        }
        trapSignals()
        defer { releaseSignals() }
        let run: RunRecord
        let lease: RunLease
        if let resuming {
            // What an earlier owner left running goes first; this owner's processes carry a newer token.
            StrayProcesses.killRun(marker: try store.run(resuming.run)?.marker ?? "", before: resuming.fence)
            lease = resuming
            guard let record = try store.run(resuming.run) else { throw DatabaseError(code: -1, description: "run \(resuming.run) is not recorded") }
            run = record
        } else {
            (run, lease) = try store.createRun(
                environment: request.environment, sha: request.sha, ref: request.ref, trigger: request.trigger,
                user: request.user, source: request.source, commit: request.commit)
            if let identity = request.auditAs {
                do {
                    try store.audit(
                        actor: request.user, identity: identity, action: request.trigger == "rollback" ? "rolled-back" : "run.started",
                        target: "run \(run.id)", detail: "\(request.environment)\(request.sha.map { " at \($0)" } ?? "") (\(request.trigger))")
                } catch {
                    let failure = RecordingFailure(run: run.id, reason: "could not write the audit entry of run \(run.id): \(error)")
                    try? store.fenced(lease) { try store.setRunStatus(run.id, .failed, message: failure.reason) }  // best effort: the database is what failed
                    throw failure
                }
            }
        }
        let keeper = LeaseKeeper(store: store, lease: lease) { [weak self] failure in self?.stop(failure) }
        defer { keeper.stop() }
        let folder = RunFolder(root: store.runFolder(run.id))
        if resuming == nil {
            do {
                try folder.create(plan: plan, pipelineFiles: request.pipelineFiles)
                // Who started the run, as each gate knows people, fixed now: whoever resumes it later is not.
                var requesters: [String: String] = [:]
                for stage in plan.stages {
                    guard case .approval(let spec) = stage.spec else { continue }
                    requesters[stage.id] = spec.identity(environment: environment, operatingSystemUser: run.user) ?? run.user
                }
                try folder.writeRequesters(requesters)
            } catch {
                let failure = RecordingFailure(run: run.id, reason: "could not write the run folder \(folder.root.path): \(error)")
                try? store.fenced(lease) { try store.setRunStatus(run.id, .failed, message: failure.reason) }  // best effort: the folder is what failed
                throw failure
            }
        }
        Self.logger.debug("run \(run.id) recorded", metadata: ["ms": "\(Uptime.milliseconds)"])
        try waitForLock(run: run, lease: lease, noWait: request.noWait)
        Self.logger.debug("run \(run.id) holds \(run.environment)", metadata: ["ms": "\(Uptime.milliseconds)"])
        if let newer = try newerCommitRun(than: run, plan: plan, request: request, resuming: resuming) {
            let message = "superseded by run \(newer.id) (\(newer.sha.map { String($0.prefix(12)) } ?? "a newer commit")): the environment deploys only the newest commit"
            try store.fenced(lease) {
                try store.setRunStatus(run.id, .superseded, message: message)
                try store.addEvent(run.id, stage: nil, kind: "run.superseded", message: message)
            }
            console.note("run \(run.id) \(message)")
            return (try store.run(run.id) ?? run, .superseded)
        }

        let masker = SecretMasker()
        masker.add(SecretResolver.maskedValues(secrets, environment: environment))
        var initial: [String: StageStatus] = [:]
        var attempts: [String: Int] = [:]
        var seconds: [String: Double] = [:]
        if resuming != nil {
            for record in try store.stageRuns(run.id) {
                attempts[record.stageID] = record.attempts
                if let started = record.startedAt, let finished = record.finishedAt {
                    seconds[record.stageID] = finished.timeIntervalSince(started)
                }
                if record.status.letsDependentsRun { initial[record.stageID] = record.status }
            }
            try store.fenced(lease) {
                try store.addEvent(run.id, stage: nil, kind: "run.resumed", message: "\(initial.count) stages already done")
            }
            console.note("resuming run \(run.id): \(initial.count) of \(plan.stages.count) stages already done")
        }
        let launcher = StageLauncher(
            context: RunContext(
                runID: run.id, environment: plan.environment.name, sha: request.sha ?? run.sha, ref: request.ref ?? run.ref,
                branch: request.branch, marker: StrayProcesses.ownerMarker(run: run.marker, fence: lease.fence), user: run.user),
            executable: executable, environment: environment.merging(request.stageEnvironment) { _, new in new },
            secrets: secrets)
        let executor = RunExecutor(
            store: store, lease: lease, plan: plan, run: run, folder: folder, options: options, masker: masker,
            console: console, launcher: launcher, initial: initial, attempts: attempts, seconds: seconds)
        let (alreadyCancelled, failure): (Bool, RecordingFailure?) = lock.withLock {
            self.executor = executor
            return (cancelled, self.failure)
        }
        if let failure { executor.stop(failure) } else if alreadyCancelled { executor.cancel("cancelled before the first stage") }
        Self.logger.debug("run \(run.id) starts its stages", metadata: ["ms": "\(Uptime.milliseconds)"])
        let outcome = executor.execute()
        Self.logger.debug("run \(run.id) ended \(outcome.rawValue)", metadata: ["ms": "\(Uptime.milliseconds)"])
        if let failure = executor.failure { throw failure }
        return (try store.run(run.id) ?? run, outcome)
    }

    /// Triggers that come from new commits rather than a person.
    public static let commitTriggers: Set = ["hook", "watch", "webhook"]

    /// A newer commit's run queued behind `run`, when the environment deploys only the newest commit.
    private func newerCommitRun(than run: RunRecord, plan: Plan, request: Request, resuming: RunLease?) throws -> RunRecord? {
        guard resuming == nil, plan.environment.commitQueue == .newestOnly, Self.commitTriggers.contains(request.trigger) else { return nil }
        return try store.runs(environment: run.environment, limit: 200).first {
            $0.id > run.id && $0.status == .queued && Self.commitTriggers.contains($0.trigger) && OwnerLiveness.isAlive($0)
        }
    }

    private func waitForLock(run: RunRecord, lease: RunLease, noWait: Bool) throws {
        var announced: Int?
        while true {
            let (cancelled, failure) = lock.withLock { (self.cancelled, self.failure) }
            if let failure { throw failure }
            if cancelled {
                try store.fenced(lease) { try store.setRunStatus(run.id, .cancelled, message: "cancelled while waiting for the environment") }
                throw Refusal.cancelledWhileQueued(run.id)
            }
            switch try store.tryAcquireLock(environment: run.environment, lease: lease) {
            case .acquired:
                return
            case .busy(let owner), .queuedBehind(let owner):
                if owner.status == .waiting {
                    try store.fenced(lease) { try store.setRunStatus(run.id, .cancelled, message: "run \(owner.id) waits for approval") }
                    throw Refusal.awaitingApproval(owner)
                }
                if noWait {
                    try store.fenced(lease) { try store.setRunStatus(run.id, .cancelled, message: "environment busy with run \(owner.id)") }
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
        // A closed terminal or a reader that went away (`| head`) must not kill the runner mid-deploy: a write to
        // the console fails instead, and the run goes on.
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                self?.cancel(number == SIGINT ? "cancelled (Ctrl-C)" : number == SIGHUP ? "cancelled (SIGHUP: the terminal closed)" : "cancelled (SIGTERM)")
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
        signal(SIGHUP, SIG_DFL)
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

    /// Stops the run because its state cannot be recorded or another owner has it: nothing new starts, every
    /// stage process is ended.
    func stop(_ failure: RecordingFailure) {
        let executor: RunExecutor? = lock.withLock {
            if self.failure == nil { self.failure = failure }
            return self.executor
        }
        executor?.stop(failure)
    }
}

/// Renews the run's lease every two seconds (a quarter of a shorter lease). When a newer owner exists, or renewals
/// have hung or failed for half the lease (a full disk, a database locked by another process), it says so once — a
/// watchdog of its own notices even while a renewal hangs — so that the run stops before its lease can pass to
/// another. A runner that was only paused (SIGSTOP) renews when it wakes: it goes on if nobody took the run over,
/// and stops at once if somebody did.
final class LeaseKeeper: @unchecked Sendable {  // the timers are set up in init and only cancelled after
    private let renewal: any DispatchSourceTimer
    private let watchdog: any DispatchSourceTimer

    init(store: StateStore, lease: RunLease, onFailure: @escaping @Sendable (RecordingFailure) -> Void) {
        // When the renewal in progress began, and when the renewals that have failed since the last success began.
        let inProgressSince = LockedValue<Date?>(nil)
        let failingSince = LockedValue<Date?>(nil)
        let reported = LockedValue<Bool?>(nil)
        let report = { @Sendable (failure: RecordingFailure) in
            if reported.setIfUnset(true) { onFailure(failure) }
        }
        renewal = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "pipeline.lease.renewal"))
        renewal.schedule(deadline: .now() + RunLease.renewalInterval, repeating: RunLease.renewalInterval)
        renewal.setEventHandler {
            guard reported.value == nil else { return }
            let began = Date()
            inProgressSince.value = began
            defer { inProgressSince.value = nil }
            do {
                try store.renew(lease)
                failingSince.value = nil
            } catch let lost as LeaseLost {
                report(RecordingFailure(run: lease.run, reason: lost.description, leaseLost: true))
            } catch {
                // Said by the watchdog once renewals have failed for long enough; one failure can pass.
                _ = failingSince.setIfUnset(began)
            }
        }
        watchdog = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "pipeline.lease.watchdog"))
        watchdog.schedule(deadline: .now() + RunLease.renewalInterval / 2, repeating: RunLease.renewalInterval / 2)
        watchdog.setEventHandler {
            let stuck = [inProgressSince.value, failingSince.value].compactMap { $0 }.min()
            guard let stuck, Date().timeIntervalSince(stuck) > RunLease.duration / 2 else { return }
            report(RecordingFailure(run: lease.run, reason: "could not renew this runner's lease on run \(lease.run) for \(Int(Date().timeIntervalSince(stuck)))s (the state database cannot be written)"))
        }
        renewal.resume()
        watchdog.resume()
    }

    func stop() {
        renewal.cancel()
        watchdog.cancel()
    }
}

/// A value shared between threads behind a lock.
final class LockedValue<Value: Sendable>: Sendable {
    private let lock = NSLock()
    nonisolated(unsafe) private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

extension LockedValue {
    /// Changes the value in place, holding the lock.
    func modify<T>(_ body: (inout Value) -> T) -> T {
        lock.withLock { body(&stored) }
    }

    /// Sets the value when it is nil; true when this call set it.
    func setIfUnset<Wrapped>(_ new: Wrapped) -> Bool where Value == Wrapped? {
        lock.withLock {
            guard stored == nil else { return false }
            stored = new
            return true
        }
    }
}

/// The run's state or logs could not be recorded, or another owner took the run over: the runner stopped its
/// stages and changed nothing more.
public struct RecordingFailure: Error, CustomStringConvertible, Sendable {
    /// The run.
    public let run: Int
    /// What could not be recorded, and why.
    public let reason: String
    /// Whether a newer owner has the run (nothing more may be written), rather than a write failing.
    public var leaseLost = false

    /// One line saying so.
    public var description: String {
        leaseLost ? reason : "run \(run) was stopped: \(reason)"
    }
}

extension RunSession {
    /// `execute` on a thread of its own, awaited. A run is child processes and threads that wait for them (blocking
    /// calls by design); an async caller awaits it here instead of holding one of the few threads of the
    /// concurrency pool for the length of the run.
    public func run(
        plan: Plan, request: Request, options: RunOptions, executable: String, secrets: [String: [String: String]],
        environment: [String: String], resuming: RunLease? = nil
    ) async throws -> (RunRecord, RunStatus) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { [self] in
                continuation.resume(
                    with: Result {
                        try execute(
                            plan: plan, request: request, options: options, executable: executable, secrets: secrets,
                            environment: environment, resuming: resuming)
                    })
            }
        }
    }
}
