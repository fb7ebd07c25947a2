import Foundation

/// One decision at an approval gate, as kept (append-only).
public struct ApprovalRecord: Sendable, Equatable {
    /// The decisions.
    public enum Decision: String, Sendable {
        /// The run reached the gate; `user` is who started it.
        case requested
        /// Approved by `user`.
        case approved
        /// Rejected by `user`.
        case rejected
        /// The gate's timeout passed.
        case expired
    }

    /// The run.
    public let run: Int
    /// The gate's stage id.
    public let stage: String
    /// Who.
    public let user: String
    /// What.
    public let decision: Decision
    /// Their comment or reason.
    public let comment: String?
    /// When.
    public let at: Date
}

/// Why a decision was not taken; nothing changed.
public struct ApprovalRefusal: Error, CustomStringConvertible, Sendable {
    /// One line saying why.
    public let description: String

    /// A refusal saying `description`.
    public init(description: String) { self.description = description }
}

/// What an approval did.
public enum ApprovalResult: Sendable, Equatable {
    /// Counted; more are needed.
    case recorded(approvals: Int, required: Int)
    /// This person had approved already: it counts once.
    case alreadyApproved(approvals: Int, required: Int)
    /// Enough approvals: this decision moved the run on. With a lease, the deciding process owns the run and
    /// continues it; without one, the run is `approved`, for a runner to take on (`pipeline resume`).
    case released(approvers: [String], lease: RunLease?)
    /// Enough approvals for a run whose own process waits at the gate (`--wait`): that process goes on.
    case releasedToWaitingProcess(approvers: [String])
}

extension StateStore {
    /// The decisions at `stage` of `run`, oldest first.
    public func approvals(run: Int, stage: String) throws -> [ApprovalRecord] {
        try database.query("SELECT * FROM approvals WHERE run_id = ? AND stage_id = ? ORDER BY id", [.integer(Int64(run)), .text(stage)])
            .map { row in
                ApprovalRecord(
                    run: row["run_id"].int ?? 0, stage: row["stage_id"].string ?? "", user: row["user"].string ?? "",
                    decision: try known(ApprovalRecord.Decision.self, row["decision"], of: "a decision at \(stage) of run \(run)"), comment: row["comment"].string,
                    at: Date(timeIntervalSince1970: row["at"].double ?? 0))
            }
    }

    /// Notes that `run` reached the gate `stage`, started by `requester` (once; a resumed run keeps the first).
    public func requestApproval(run: Int, stage: String, requester: String) throws {
        try database.transaction {
            guard try approvals(run: run, stage: stage).isEmpty else { return }
            try insertDecision(run: run, stage: stage, user: requester, decision: .requested, comment: nil)
        }
    }

    /// Records `user`'s approval; with `required` distinct approvals, moves the run on — exactly once, however many
    /// approvals race — and, given `continuingAs`, makes that process the run's owner in the same transaction.
    /// Refused (nothing recorded) unless the run waits at that gate.
    public func approve(
        run id: Int, stage: String, user: String, comment: String?, required: Int, continuingAs owner: RunOwner? = nil
    ) throws -> ApprovalResult {
        try database.transaction { () throws -> ApprovalResult in
            let waiting = try requireWaiting(id, stage: stage)
            let decisions = try approvals(run: id, stage: stage)
            let approvers = Set(decisions.filter { $0.decision == .approved }.map(\.user))
            if approvers.contains(user) { return .alreadyApproved(approvals: approvers.count, required: required) }
            try insertDecision(run: id, stage: stage, user: user, decision: .approved, comment: comment)
            let now = approvers.union([user])
            let names = now.sorted().joined(separator: ", ")
            guard now.count >= required else {
                let more = required - now.count
                try setStageStatus(id, stage, .waiting, message: "waiting for \(more) more approval\(more == 1 ? "" : "s"); approved by \(names)")
                return .recorded(approvals: now.count, required: required)
            }
            if waiting.status == .running {
                try addEvent(id, stage: stage, kind: "approval.approved", message: "approved by \(names)")
                return .releasedToWaitingProcess(approvers: now.sorted())
            }
            // The gate is passed once, here: a resumed run finds it succeeded and never decides it again.
            try setStageStatus(id, stage, .succeeded, message: "approved by \(names)")
            let moved = try database.query(
                "UPDATE runs SET status = 'approved', message = ? WHERE id = ? AND status = 'waiting' RETURNING id",
                [.text("approved by \(names); continuing"), .integer(Int64(id))])
            guard !moved.isEmpty else { throw ApprovalRefusal(description: "run \(id) was moved on by another decision meanwhile") }
            try addEvent(id, stage: stage, kind: "approval.released", message: "approved by \(names)")
            let lease = try owner.map { try takeOwnership(of: id, accepting: [.approved], owner: $0, why: "approve by \(user)") }
            return .released(approvers: now.sorted(), lease: lease)
        }
    }

    /// Who approved `run` at a gate it has passed (nil when it passed no gate by approval).
    public func releasedBy(run id: Int) throws -> [String]? {
        let passed = try stageRuns(id).filter { $0.status == .succeeded }.map(\.stageID)
        for stage in passed {
            let approvers = try approvals(run: id, stage: stage).filter { $0.decision == .approved }.map(\.user)
            if !approvers.isEmpty { return Array(Set(approvers)).sorted() }
        }
        return nil
    }

    /// Records `user`'s rejection and ends the run failed, releasing its environment.
    public func reject(run id: Int, stage: String, user: String, reason: String) throws {
        try database.transaction {
            let waiting = try requireWaiting(id, stage: stage)
            try insertDecision(run: id, stage: stage, user: user, decision: .rejected, comment: reason)
            // A run whose own process waits at the gate ends itself when it sees the rejection.
            if waiting.status == .running { return }
            try setStageStatus(id, stage, .failed, message: "rejected by \(user): \(reason)")
            try setRunStatus(id, .failed, message: "rejected at \(stage) by \(user): \(reason)")
            try addEvent(id, stage: stage, kind: "approval.rejected", message: "\(user): \(reason)")
        }
    }

    /// Ends a waiting run whose gate timed out, if it still waits; returns whether it did.
    @discardableResult
    public func expire(run id: Int, stage: String, after seconds: Double) throws -> Bool {
        try database.transaction { () throws -> Bool in
            guard try run(id)?.status == .waiting else { return false }
            try insertDecision(run: id, stage: stage, user: "pipeline", decision: .expired, comment: "no decision within \(Int(seconds))s")
            try setStageStatus(id, stage, .failed, message: "expired: not enough approvals within \(Int(seconds))s")
            try setRunStatus(id, .failed, message: "expired at \(stage): not enough approvals within \(Int(seconds))s")
            try addEvent(id, stage: stage, kind: "approval.expired", message: "after \(Int(seconds))s")
            return true
        }
    }

    /// The waiting runs, newest first, of one environment or all.
    public func waitingRuns(environment: String? = nil) throws -> [RunRecord] {
        let rows = if let environment {
            try database.query("SELECT * FROM runs WHERE status = 'waiting' AND environment = ? ORDER BY id DESC", [.text(environment)])
        } else {
            try database.query("SELECT * FROM runs WHERE status = 'waiting' ORDER BY id DESC")
        }
        return try rows.map { try Self.run($0) }
    }

    @discardableResult
    private func requireWaiting(_ id: Int, stage: String) throws -> RunRecord {
        guard let run = try run(id) else { throw ApprovalRefusal(description: "there is no run \(id)") }
        let released = try approvals(run: id, stage: stage).filter { $0.decision == .approved }.map(\.user)
        if run.status != .waiting, try stageRuns(id).first(where: { $0.stageID == stage })?.status == .succeeded, !released.isEmpty {
            let runner = run.status.hasOwner ? "; it continues under \(run.owner?.description ?? "pid \(run.pid ?? 0)")" : run.status == .approved ? "; `pipeline resume \(id)` continues it" : " (it is \(run.status.rawValue) now)"
            throw ApprovalRefusal(
                description: "run \(id) was already approved by \(Array(Set(released)).sorted().joined(separator: ", "))\(runner); nothing more to decide")
        }
        guard run.status == .waiting || run.status == .running else {
            let why = switch run.status {
            case .failed: "it has ended (\(run.message ?? "failed"))"
            case .cancelled: "it was cancelled"
            case .succeeded, .rolledBack: "it has finished"
            default: "it is \(run.status.rawValue), not waiting for approval"
            }
            throw ApprovalRefusal(description: "run \(id) cannot be decided on: \(why)")
        }
        let waitingAt = try stageRuns(id).first { $0.status == .waiting }?.stageID
        guard waitingAt == stage else { throw ApprovalRefusal(description: "run \(id) does not wait at \(stage)") }
        return run
    }

    private func insertDecision(run: Int, stage: String, user: String, decision: ApprovalRecord.Decision, comment: String?) throws {
        try database.execute(
            "INSERT INTO approvals (run_id, stage_id, user, decision, comment, at) VALUES (?, ?, ?, ?, ?, ?)",
            [.integer(Int64(run)), .text(stage), .text(user), .text(decision.rawValue), comment.map(SQLValue.text) ?? .null, .real(now())])
    }
}
