import Foundation
import Synchronization
import PipelineDSL
import StageContract

/// How a run is carried out.
public struct RunOptions: Sendable {
    /// Most stages at once.
    public var parallelism: Int
    /// Stop starting stages after the first failure.
    public var failFast: Bool
    /// Seconds between SIGTERM and SIGKILL when a stage is stopped.
    public var killGrace: Double
    /// The timeout of a stage whose plan gives none, in seconds.
    public var defaultTimeout: Double
    /// Wait at approval gates in the foreground instead of stopping the run as waiting.
    public var waitForApproval = false

    /// Options; the defaults suit production runs.
    public init(parallelism: Int, failFast: Bool = false, killGrace: Double = 10, defaultTimeout: Double = 3600) {
        self.parallelism = parallelism
        self.failFast = failFast
        self.killGrace = killGrace
        self.defaultTimeout = defaultTimeout
    }
}

/// Runs a plan's stages as child processes, as the scheduler decides, recording everything in the state store
/// and the run folder.
/// Unchecked: the stage threads share the scheduler, attempts, processes and the cancel reason under `condition`
/// (an NSCondition, which the waits for a free slot and for backoffs need); every access takes it.
public final class RunExecutor: @unchecked Sendable {
    private let store: StateStore
    private let lease: RunLease
    private let plan: Plan
    private let run: RunRecord
    private let folder: RunFolder
    private let options: RunOptions
    private let masker: SecretMasker
    private let console: any RunConsole
    private let launcher: StageLauncher

    private let condition = NSCondition()
    private var scheduler: Scheduler
    /// The stage processes running now, behind their own lock so that a stop never waits for the scheduling loop.
    private let processes = LockedValue<[String: StageProcess]>([:])
    private var finished: [(String, StageStatus)] = []
    private var cancelReason: String?
    private var attempts: [String: Int]
    private var seconds: [String: Double] = [:]
    private var rolledBack: [String] = []
    private var leftBehind: [String] = []
    /// Set once when the run must stop unrecorded; behind its own lock, since state is recorded with `condition` held.
    private let recordingFailure = LockedValue<RecordingFailure?>(nil)

    /// An executor for `run` of `plan`, whose stages start from `initial` statuses and attempt counts.
    public init(
        store: StateStore, lease: RunLease, plan: Plan, run: RunRecord, folder: RunFolder, options: RunOptions,
        masker: SecretMasker, console: any RunConsole, launcher: StageLauncher, initial: [String: StageStatus] = [:],
        attempts: [String: Int] = [:], seconds: [String: Double] = [:]
    ) {
        self.store = store
        self.lease = lease
        self.seconds = seconds
        self.plan = plan
        self.run = run
        self.folder = folder
        self.options = options
        self.masker = masker
        self.console = console
        self.launcher = launcher
        self.attempts = attempts
        var start = initial
        for stage in plan.stages where start[stage.id] == nil {
            if let condition = stage.condition, !condition.holds(branch: launcher.context.branch) {
                start[stage.id] = .conditionFalse
            }
        }
        scheduler = Scheduler(stages: plan.stages, initial: start, failFast: options.failFast)
    }

    /// Asks the run to stop: running stages get SIGTERM (SIGKILL after the grace period), nothing new starts.
    public func cancel(_ reason: String) {
        cancelling(grace: options.killGrace, reason)
    }

    private func cancelling(grace: Double, _ reason: String) {
        condition.lock()
        let first = cancelReason == nil
        if first { cancelReason = reason }
        condition.broadcast()
        condition.unlock()
        guard first else { return }
        let running = Array(processes.value.values)
        for process in running { process.signalGroup(SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
            for process in running { process.signalGroup(SIGKILL) }
        }
    }

    /// Why the run was stopped without being able to record it, if it was.
    public var failure: RecordingFailure? { recordingFailure.value }

    /// Stops the run because its state or logs cannot be recorded, or another owner has it: nothing new starts
    /// and every stage process is ended — at once when another owner may already be acting.
    public func stop(_ failure: RecordingFailure) {
        guard recordingFailure.setIfUnset(failure) else { return }
        // Stopping must not wait for `condition`: a failed write can come from the scheduling loop, which holds it.
        DispatchQueue.global().async { [self] in halt(failure) }
    }

    private func halt(_ failure: RecordingFailure) {
        console.note("error: \(masker.mask(failure.description))")
        // The stages end now, whether or not the scheduling loop is stuck in a write (a locked database).
        let running = Array(processes.value.values)
        if failure.leaseLost {
            for process in running { process.signalGroup(SIGKILL) }
            StrayProcesses.kill(variable: StrayProcesses.runMarkerVariable, value: launcher.context.marker)
        } else {
            // The stages must be gone well before the lease could pass to another owner: the grace is cut short.
            for process in running { process.signalGroup(SIGTERM) }
            let grace = min(options.killGrace, RunLease.duration / 4)
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
                for process in running { process.signalGroup(SIGKILL) }
                StrayProcesses.kill(variable: StrayProcesses.runMarkerVariable, value: self.launcher.context.marker)
            }
        }
        cancelling(grace: min(options.killGrace, RunLease.duration / 4), failure.leaseLost ? "another runner owns the run now" : "stopped: the run's state or logs could not be recorded")
    }

    /// Runs every stage that can run, and returns how the run ended.
    public func execute() -> RunStatus {
        let started = Date()
        console.runStarted(id: run.id, environment: plan.environment.name, stages: plan.stages.count)
        record { try store.addEvent(run.id, stage: nil, kind: "run.started", message: "\(plan.stages.count) stages") }
        for (id, status) in scheduler.status where status == .conditionFalse {
            record { try store.setStageStatus(run.id, id, .conditionFalse, message: "condition is false") }
            console.stageFinished(id, status: .conditionFalse, attempt: 0, seconds: 0, message: "condition is false")
        }
        condition.lock()
        while true {
            if let reason = cancelReason ?? failure.map({ "stopped: \($0.reason)" }) { scheduler.stop(reason) }
            for (id, result) in finished { scheduler.finished(id, result) }
            finished.removeAll()
            for decision in scheduler.next(limit: max(1, options.parallelism)) {
                switch decision {
                case .start(let id):
                    let stage = plan.stages.first { $0.id == id }!
                    Thread.detachNewThread { [self] in
                        let result = self.runStage(stage)
                        self.condition.lock()
                        self.finished.append((id, result))
                        self.condition.broadcast()
                        self.condition.unlock()
                    }
                case .skip(let id, let reason):
                    let status: StageStatus = cancelReason != nil ? .cancelled : .skipped
                    scheduler.finished(id, status)
                    record { try store.setStageStatus(run.id, id, status, message: masker.mask(reason)) }
                    console.stageFinished(id, status: status, attempt: 0, seconds: 0, message: reason)
                }
            }
            if scheduler.isDone { break }
            if finished.isEmpty { condition.wait() }
        }
        condition.unlock()
        launcher.finish()  // every stage has ended

        var outcome = scheduler.outcome
        if outcome == .failed && !rolledBack.isEmpty { outcome = .rolledBack }
        let gate = summary(waitingIn: scheduler)
        let summary = plan.stages.map { stage in
            StageSummary(
                stage: stage.id, status: scheduler.status[stage.id] ?? .pending, seconds: seconds[stage.id] ?? 0,
                attempts: attempts[stage.id] ?? 0)
        }
        let failedStages = summary.filter { [.failed, .timedOut].contains($0.status) }.map(\.stage)
        var message: String = switch outcome {
        case .succeeded: "all \(plan.stages.count) stages succeeded or were skipped by their condition"
        case .cancelled: (cancelReason ?? "cancelled") + (rolledBack.isEmpty ? "" : "; rolled back: \(rolledBack.sorted().joined(separator: ", "))")
        case .rolledBack: "failed: \(failedStages.joined(separator: ", ")); rolled back: \(rolledBack.sorted().joined(separator: ", "))"
        case .waiting: "waiting for approval at \(gate ?? "its gate")"
        default: "failed: \(failedStages.joined(separator: ", "))"
        }
        if !leftBehind.isEmpty { message += "; " + leftBehind.joined(separator: "; ") }
        if let failure = self.failure {
            StrayProcesses.kill(variable: StrayProcesses.runMarkerVariable, value: launcher.context.marker)
            guard !failure.leaseLost else { return .failed }
            // One last try to say why, without which the next command finds the runner gone and interrupts the run.
            let why = "stopped: \(failure.reason)"
            do {
                try store.fenced(lease) {
                    try store.interruptRunningStages(of: run.id, message: "its runner stopped: the run's state could not be recorded")
                    try store.addEvent(run.id, stage: nil, kind: "run.finished", message: masker.mask(why))
                    try store.setRunStatus(run.id, .failed, message: masker.mask(why))
                }
            } catch {
                console.note("error: could not record that run \(run.id) stopped either (\(masker.mask("\(error)"))); the next pipeline command will find its runner gone and mark it interrupted")
            }
            return .failed
        }
        record {
            try store.addEvent(run.id, stage: nil, kind: "run.finished", message: masker.mask(message))
            try store.setRunStatus(run.id, outcome, message: masker.mask(message))
        }
        StrayProcesses.kill(variable: StrayProcesses.runMarkerVariable, value: launcher.context.marker)
        console.runFinished(id: run.id, status: outcome, summary: summary, seconds: Date().timeIntervalSince(started))
        return outcome
    }

    private func summary(waitingIn scheduler: Scheduler) -> String? {
        scheduler.status.first { $0.value == .waiting }?.key
    }

    /// Runs one stage to its end, with its retries.
    private func runStage(_ stage: Stage) -> StageStatus {
        let maximum = 1 + max(0, stage.retry?.attempts ?? 0)
        var backoff = stage.retry?.backoffSeconds ?? 0
        var tried = 0
        while true {
            tried += 1
            let attempt = lockedIncrementAttempt(stage.id)
            let began = Date()
            let (status, exitCode, message) = attemptStage(stage, attempt: attempt)
            let elapsed = Date().timeIntervalSince(began)
            condition.lock()
            seconds[stage.id, default: 0] += elapsed
            let cancelled = cancelReason != nil
            condition.unlock()
            // A stage that says another attempt cannot help (StageExit.permanentFailure) is not retried.
            let hopeless = exitCode == StageExit.permanentFailure && tried < maximum
            let final = status == .succeeded || cancelled || tried >= maximum || status == .cancelled || status == .waiting || hopeless
            let recorder = DeploymentRecorder(plan: plan, run: run, folder: folder, store: store, masker: masker)
            // The stage's end and the deployment it means are one write: never one without the other.
            record {
                try store.setStageStatus(
                    run.id, stage.id, final ? status : .running, attempt: attempt, exitCode: exitCode,
                    message: message.map(masker.mask))
                try store.addEvent(
                    run.id, stage: stage.id, kind: final ? "stage.finished" : "stage.retrying",
                    message: masker.mask("attempt \(attempt): \(status.rawValue)\(message.map { " — \($0)" } ?? "")"))
                try store.recordAWSRequests(run: run.id, stage: stage.id, from: folder.awsRequestsFile(stage.id))
                if final, try recorder.stageEnded(stage, status: status), let service = stage.service {
                    condition.lock()
                    rolledBack.append(service)
                    condition.unlock()
                }
            }
            if final {
                if let note = recorder.leftBehind(stage, status: status) {
                    console.note("\(stage.id): \(note)")
                    condition.lock()
                    leftBehind.append(note)
                    condition.unlock()
                }
            }
            console.stageFinished(stage.id, status: status, attempt: attempt, seconds: elapsed, message: message)
            if final { return cancelled && status != .succeeded ? .cancelled : status }
            console.note(
                "\(stage.id): retrying in \(String(format: "%.1f", backoff))s (attempt \(attempt + 1) of \(maximum))")
            let deadline = Date().addingTimeInterval(backoff)
            condition.lock()
            while cancelReason == nil && Date() < deadline { _ = condition.wait(until: deadline) }
            let stopped = cancelReason != nil
            condition.unlock()
            if stopped {
                record { try store.setStageStatus(run.id, stage.id, .cancelled, attempt: attempt, message: "cancelled") }
                console.stageFinished(stage.id, status: .cancelled, attempt: attempt, seconds: 0, message: "cancelled")
                return .cancelled
            }
            backoff *= 2
        }
    }

    private func lockedIncrementAttempt(_ id: String) -> Int {
        condition.lock()
        defer { condition.unlock() }
        attempts[id, default: 0] += 1
        return attempts[id]!
    }

    /// One attempt: start the process, pump its output, enforce the timeout, clean up its group.
    private func attemptStage(_ stage: Stage, attempt: Int) -> (StageStatus, Int32?, String?) {
        if case .approval(let spec) = stage.spec { return gate(stage, spec) }
        record { try store.setStageStatus(run.id, stage.id, .running, attempt: attempt) }
        // A stage starts only once its start is recorded by the run's owner (a failed write, or a newer owner,
        // stops the run instead).
        if let failure { return (.cancelled, nil, failure.leaseLost ? "not started: another runner owns the run" : "not started: its start could not be recorded") }
        console.stageStarted(stage.id, attempt: attempt)
        let log: BufferedFile
        do {
            log = try BufferedFile(path: folder.log(stage.id).path)
        } catch {
            let problem = "cannot open the log of \(stage.id) (\(folder.log(stage.id).path)): \(error)"
            stop(RecordingFailure(run: run.id, reason: problem))
            return (.cancelled, nil, "not started: \(problem)")
        }
        log.append(text: "\(String(decoding: Timestamp.now(), as: UTF8.self))--- attempt \(attempt) of \(stage.id)\n")
        log.flush()
        // A stage whose log cannot be written is not started: its output would be lost.
        if let problem = log.failureDescription {
            stop(RecordingFailure(run: run.id, reason: problem))
            return (.cancelled, nil, "not started: \(problem)")
        }
        let launch: StageLauncher.Launch
        do {
            launch = try launcher.launch(stage, attempt: attempt, folder: folder, plan: plan, masker: masker)
        } catch {
            let message = masker.mask("\(error)")
            log.append(text: "\(String(decoding: Timestamp.now(), as: UTF8.self))--- \(message)\n")
            log.flush()
            return (.failed, nil, message)
        }
        condition.lock()
        if cancelReason != nil || failure != nil {
            launch.process.signalGroup(SIGKILL)
        }
        processes.modify { $0[stage.id] = launch.process }
        condition.unlock()

        let pumped = DispatchSemaphore(value: 0)
        let pump = OutputPump(
            stage: stage.id, stdout: launch.stdout, stderr: launch.stderr, log: log, masker: masker, sink: console
        ) { [self] problem in
            // The log cannot take the stage's output: the run stops now, not when the stage is done.
            stop(RecordingFailure(run: run.id, reason: masker.mask(problem)))
        }
        Thread.detachNewThread {
            pump.run()
            pumped.signal()
        }
        let timeout = stage.timeoutSeconds ?? options.defaultTimeout
        let timedOut = TimeoutFlag()
        let grace = options.killGrace
        let timer = DispatchWorkItem {
            timedOut.set()
            launch.process.signalGroup(SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { launch.process.signalGroup(SIGKILL) }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let exitCode = launch.process.wait()
        timer.cancel()
        // Whatever the stage left running in its group goes with it.
        launch.process.signalGroup(SIGTERM)
        if pumped.wait(timeout: .now() + 2) == .timedOut {
            launch.process.signalGroup(SIGKILL)
            StrayProcesses.kill(variable: StrayProcesses.stageMarkerVariable, value: launch.stageMarker)
            if pumped.wait(timeout: .now() + 5) == .timedOut {
                log.append(text: "--- output still open after the stage ended; stopped reading\n")
            }
        }
        launch.process.signalGroup(SIGKILL)
        condition.lock()
        processes.modify { $0[stage.id] = nil }
        let cancelled = cancelReason != nil
        condition.unlock()

        var status: StageStatus
        var message: String?
        if timedOut.isSet {
            status = .timedOut
            message = "timed out after \(Int(timeout))s"
        } else if cancelled && exitCode != 0 {
            status = .cancelled
            message = "cancelled"
        } else if exitCode == 0 {
            status = .succeeded
        } else {
            status = .failed
            message = exitCode > 128 ? "ended by signal \(exitCode - 128)" : "exited with status \(exitCode)"
            if let reason = folder.lastErrorLine(of: stage.id) { message! += ": \(reason)" }
        }
        // What the stage left is masked before anyone can see it; its outputs are published first (a built-in
        // stage's as written, for later stages only); its deployment claim is checked.
        var unrecorded: String?
        do {
            try folder.maskArtifacts(of: stage.id, with: masker)
            if status == .succeeded {
                for key in try folder.publishOutputs(of: stage, masker: masker) {
                    log.append(text: "\(String(decoding: Timestamp.now(), as: UTF8.self))err warning: the output key '\(key)' holds a secret's value: it is not published\n")
                }
            }
            try folder.maskOutputs(of: stage.id, with: masker)
            if DeploymentRecorder.claimingKinds.contains(stage.kind) {
                try folder.settleClaim(of: stage, runSHA: run.sha, masker: masker)
            } else {
                try folder.maskStrayClaim(of: stage.id, with: masker)
            }
        } catch let refusal as ClaimRefusal {
            log.append(text: "\(String(decoding: Timestamp.now(), as: UTF8.self))err error: \(refusal.reason)\n")
            if status == .succeeded { status = .failed }
            message = [message, refusal.reason].compactMap { $0 }.joined(separator: "; ")
        } catch {
            unrecorded = "could not mask and keep the outputs, claim and artifacts of \(stage.id) (what could not be masked was removed): \(error)"
        }
        launcher.handedOn.forget(stage.id)
        log.append(text: "\(String(decoding: Timestamp.now(), as: UTF8.self))--- \(status.rawValue) (exit \(exitCode))\n")
        log.flush()
        if let problem = unrecorded ?? log.failureDescription {
            stop(RecordingFailure(run: run.id, reason: masker.mask(problem)))
            return (.failed, exitCode, masker.mask(problem))
        }
        return (status, exitCode, message)
    }

    /// An approval gate, decided in the runner: passes once enough people approved, fails when rejected or
    /// expired, and otherwise waits — in the foreground with `waitForApproval`, else by stopping the run as waiting.
    private func gate(_ stage: Stage, _ spec: ApprovalSpec) -> (StageStatus, Int32?, String?) {
        // Who started the run, as recorded when it was created (a runner resuming it may be someone else); a run
        // folder from before that was kept: this process's identity, as then.
        let starter: String?
        do {
            starter = try folder.requesters()?[stage.id]
        } catch {
            let problem = masker.mask("\(error)")
            stop(RecordingFailure(run: run.id, reason: problem))
            return (.failed, nil, problem)
        }
        let requester = starter ?? spec.identity(environment: ProcessInfo.processInfo.environment, operatingSystemUser: run.user) ?? run.user
        record { try store.requestApproval(run: run.id, stage: stage.id, requester: requester) }
        var announced = false
        while true {
            let decisions: [ApprovalRecord]
            do {
                decisions = try store.approvals(run: run.id, stage: stage.id)
            } catch {
                // Not knowing who decided is not "nobody decided": the run stops, loudly.
                let problem = "could not read the approvals of \(stage.id): \(masker.mask("\(error)"))"
                stop(RecordingFailure(run: run.id, reason: problem))
                return (.failed, nil, problem)
            }
            if let rejected = decisions.last(where: { $0.decision == .rejected }) {
                return (.failed, nil, "rejected by \(rejected.user): \(rejected.comment ?? "")")
            }
            let approvers = Set(decisions.filter { $0.decision == .approved }.map(\.user)).sorted()
            if approvers.count >= spec.required {
                record { try store.setStageStatus(run.id, stage.id, .succeeded, message: "approved by \(approvers.joined(separator: ", "))") }
                return (.succeeded, 0, "approved by \(approvers.joined(separator: ", "))")
            }
            let since = decisions.first?.at ?? Date()
            if let timeout = spec.timeoutSeconds, Date().timeIntervalSince(since) > timeout {
                return (.failed, nil, "expired: \(approvers.count) of \(spec.required) approvals within \(Int(timeout))s")
            }
            let waiting = "waiting for \(spec.required - approvers.count) more approval(s) from \(spec.approvers.joined(separator: ", "))"
            record { try store.setStageStatus(run.id, stage.id, .waiting, message: waiting) }
            if !announced {
                record { try store.addEvent(run.id, stage: stage.id, kind: "approval.waiting", message: waiting) }
                console.note("\(stage.id): \(spec.message ?? "approval needed") — \(waiting)")
                announced = true
            }
            guard options.waitForApproval else { return (.waiting, nil, waiting) }
            condition.lock()
            let cancelled = cancelReason != nil
            condition.unlock()
            if cancelled { return (.cancelled, nil, "cancelled while waiting for approval") }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    /// Every state write carries the run's lease. One that fails stops the run: a run whose state cannot be recorded
    /// (a full disk) or that another runner owns now must not go on acting.
    private func record(_ body: () throws -> Void) {
        if failure != nil { return }
        do {
            try store.fenced(lease, body)
        } catch let lost as LeaseLost {
            stop(RecordingFailure(run: run.id, reason: lost.description, leaseLost: true))
        } catch {
            stop(RecordingFailure(run: run.id, reason: "could not record the run's state: \(masker.mask("\(error)"))"))
        }
    }
}

/// Set once, from any thread.
final class TimeoutFlag: Sendable {
    private let value = Atomic(false)

    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
