import PipelineDSL

/// Decides what runs next in a run: a pure state machine over the stages' statuses.
///
/// A stage starts once everything it depends on succeeded or was skipped by its condition, in plan order, up to
/// the parallelism limit. A stage whose dependency failed is skipped; with fail-fast, a failure skips every
/// stage not yet started.
public struct Scheduler: Sendable {
    /// What to do next.
    public enum Decision: Equatable, Sendable {
        /// Start this stage.
        case start(String)
        /// Mark this stage skipped, for this reason.
        case skip(String, reason: String)
    }

    /// The stages, in plan order.
    public let stages: [Stage]
    /// Every stage's status.
    public private(set) var status: [String: StageStatus]
    private let failFast: Bool
    private var stopReason: String?
    private var paused = false

    /// A scheduler for `stages` with the statuses they start from (`.pending` when absent).
    public init(stages: [Stage], initial: [String: StageStatus] = [:], failFast: Bool = false) {
        self.stages = stages
        self.failFast = failFast
        var status: [String: StageStatus] = [:]
        for stage in stages { status[stage.id] = initial[stage.id] ?? .pending }
        self.status = status
    }

    /// The stages to start or skip now, given how many run.
    public mutating func next(limit: Int) -> [Decision] {
        // An approval gate is waiting: nothing new starts; the run stops once what runs has ended.
        if paused { return [] }
        var decisions: [Decision] = []
        var changed = true
        while changed {
            changed = false
            for stage in stages where status[stage.id] == .pending {
                if let reason = stopReason {
                    status[stage.id] = .skipped
                    decisions.append(.skip(stage.id, reason: reason))
                    changed = true
                } else if let blocker = stage.dependsOn.first(where: { dependency in
                    guard let state = status[dependency] else { return false }
                    return state.isFinal && !state.letsDependentsRun
                }) {
                    status[stage.id] = .skipped
                    decisions.append(.skip(stage.id, reason: "\(blocker) did not succeed"))
                    changed = true
                }
            }
        }
        var running = status.values.filter { $0 == .running }.count
        for stage in stages where running < limit && status[stage.id] == .pending {
            let ready = stage.dependsOn.allSatisfy { status[$0]?.letsDependentsRun ?? true }
            if ready {
                status[stage.id] = .running
                decisions.append(.start(stage.id))
                running += 1
            }
        }
        return decisions
    }

    /// Records how a started stage ended.
    public mutating func finished(_ id: String, _ result: StageStatus) {
        status[id] = result
        if result == .waiting { paused = true }
        if failFast && !result.letsDependentsRun && stopReason == nil {
            stopReason = "--fail-fast: \(id) did not succeed"
        }
    }

    /// Stops everything not yet started (the run was cancelled).
    public mutating func stop(_ reason: String) {
        stopReason = reason
    }

    /// Whether no stage is pending or running (or, paused at a gate, none is running).
    public var isDone: Bool { paused ? !status.values.contains(.running) : status.values.allSatisfy(\.isFinal) }

    /// How the run ended, once `isDone`: waiting when it stopped at a gate and nothing else failed meanwhile.
    public var outcome: RunStatus {
        if status.values.contains(.cancelled) { return .cancelled }
        let failed = status.values.contains { $0.isFinal && !$0.letsDependentsRun && $0 != .skipped }
        if paused && !failed { return .waiting }
        return status.values.allSatisfy(\.letsDependentsRun) ? .succeeded : .failed
    }
}
