import Foundation
import PipelineDSL
import StageContract

/// The approval gate a waiting run stands at, read from its run folder and records.
public struct WaitingGate: Sendable {
    /// The run.
    public let run: RunRecord
    /// The plan it runs.
    public let plan: Plan
    /// The gate's stage id.
    public let stage: String
    /// The gate's rules.
    public let spec: ApprovalSpec
    /// Every decision so far.
    public let decisions: [ApprovalRecord]

    /// Who started the run, as the gate knows people.
    public var requester: String? { decisions.first { $0.decision == .requested }?.user }
    /// When the run reached the gate.
    public var since: Date { decisions.first?.at ?? run.finishedAt ?? run.createdAt }
    /// The people who approved, each once.
    public var approvers: [String] { Array(Set(decisions.filter { $0.decision == .approved }.map(\.user))).sorted() }
    /// When it expires, if it does.
    public var expiresAt: Date? { spec.timeoutSeconds.map { since.addingTimeInterval($0) } }

    /// The gate `run` waits at, if it waits at one.
    public static func of(_ run: RunRecord, store: StateStore) throws -> WaitingGate? {
        guard run.status == .waiting || run.status == .running,
            let stage = try store.stageRuns(run.id).first(where: { $0.status == .waiting })?.stageID
        else { return nil }
        let plan: Plan
        do {
            plan = try RunFolder(root: store.runFolder(run.id)).readPlan()
        } catch {
            throw RunFolderDamaged(run: run.id, file: store.runFolder(run.id).appending(path: "plan.json").path, error: "\(error)")
        }
        guard let gate = plan.stages.first(where: { $0.id == stage }), case .approval(let spec) = gate.spec else { return nil }
        return WaitingGate(run: run, plan: plan, stage: stage, spec: spec, decisions: try store.approvals(run: run.id, stage: stage))
    }

    /// Ends the waiting runs (of `environment`, or all) whose gate timed out; returns them.
    @discardableResult
    public static func expireOverdue(store: StateStore, environment: String? = nil, now: Date = Date()) throws -> [RunRecord] {
        var expired: [RunRecord] = []
        for run in try store.waitingRuns(environment: environment) {
            guard let gate = try of(run, store: store), let expiresAt = gate.expiresAt, expiresAt < now else { continue }
            if try store.expire(run: run.id, stage: gate.stage, after: gate.spec.timeoutSeconds ?? 0), let ended = try store.run(run.id) {
                expired.append(ended)
            }
        }
        return expired
    }
}

/// A run's folder lost what it needs (its plan): the run cannot be decided on or continued.
public struct RunFolderDamaged: Error, CustomStringConvertible, Sendable {
    /// The run.
    public let run: Int
    /// The file that cannot be read.
    public let file: String
    /// Why.
    public let error: String

    /// One line saying so, and what can still be done.
    public var description: String {
        "run \(run)'s folder is damaged: cannot read \(file) (\(error)); end the run with `pipeline reject ENV --run \(run) --reason TEXT`, which needs no plan"
    }
}
