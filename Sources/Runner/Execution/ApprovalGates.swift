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

    /// A decision a person can make at a gate.
    public enum Decision: Sendable { case approve, reject }

    /// Why `identity` may not make `decision` here; nil when they may. Only the gate's approvers decide; the person
    /// who started the run approves it only when the gate allows self-approval (anyone of them may reject).
    public func refusal(of identity: String, to decision: Decision) -> ApprovalRefusal? {
        guard spec.approvers.contains(identity) else {
            let verb = decision == .approve ? "approve" : "decide on"
            return ApprovalRefusal(description: "\(identity) may not \(verb) \(stage) of run \(run.id); its approvers are \(spec.approvers.joined(separator: ", "))")
        }
        if decision == .approve, !spec.allowSelfApproval, identity == requester {
            let others = spec.approvers.filter { $0 != identity }
            let who = others.count == 1 ? others[0] : "another of \(others.joined(separator: ", "))"
            return ApprovalRefusal(description: "\(identity) started run \(run.id) and may not approve it; \(who) must")
        }
        return nil
    }

    /// Who is deciding, as this gate knows people (its identity variable, else the operating-system user).
    public func identity(environment: [String: String], operatingSystemUser: String) throws(ApprovalRefusal) -> String {
        guard let identity = spec.identity(environment: environment, operatingSystemUser: operatingSystemUser) else {
            throw ApprovalRefusal(description: "this gate knows people by $\(spec.identityVariable ?? ""), which is not set here")
        }
        return identity
    }

    /// The gate a decision about `environment` is about: run `run`'s, else the environment's waiting run's (overdue
    /// gates are expired first). Refuses, saying where the run stands, when there is none — also when it was
    /// approved already, naming by whom.
    public static func find(_ environment: String, run: Int?, store: StateStore) throws -> WaitingGate {
        try store.reconcile()
        try expireOverdue(store: store, environment: environment)
        let record: RunRecord
        if let run {
            guard let found = try store.run(run) else {
                let latest = try store.runs(limit: 1).first.map { "; the latest is run \($0.id)" } ?? "; there are no runs yet"
                throw ApprovalRefusal(description: "there is no run \(run)\(latest)")
            }
            guard found.environment == environment else {
                throw ApprovalRefusal(description: "run \(run) is a run of \(found.environment), not \(environment)")
            }
            record = found
        } else {
            let atGate = try store.runs(environment: environment, limit: 50).filter { $0.status == .waiting || $0.status == .running }
                // A run whose gate cannot be read is not picked here; `--run N` names it and says why.
                .first { (try? of($0, store: store)) != nil }
            guard let waiting = atGate else {
                let latest = try store.runs(environment: environment, limit: 1).first
                if let latest { try refuseIfApproved(latest, store: store) }
                let note = latest.map { "; its latest run, \($0.id), is \($0.status.rawValue)\($0.message.map { ": \($0)" } ?? "")" } ?? ""
                throw ApprovalRefusal(description: "no run of \(environment) waits for approval\(note)")
            }
            record = waiting
        }
        guard let gate = try of(record, store: store) else {
            try refuseIfApproved(record, store: store)
            throw ApprovalRefusal(description: "run \(record.id) does not wait for approval: it is \(record.status.rawValue)\(record.message.map { " (\($0))" } ?? "")")
        }
        return gate
    }

    /// Refuses a decision on `run` when its gate was approved already, saying by whom and where the run is now.
    private static func refuseIfApproved(_ run: RunRecord, store: StateStore) throws {
        guard let approvers = try store.releasedBy(run: run.id) else { return }
        let now = run.status.hasOwner
            ? "; it continues under \(run.owner?.description ?? "pid \(run.pid ?? 0)")"
            : run.status == .approved ? "; `pipeline resume \(run.id)` continues it" : " (it is \(run.status.rawValue) now)"
        throw ApprovalRefusal(description: "run \(run.id) of \(run.environment) was already approved by \(approvers.joined(separator: ", "))\(now); nothing more to decide")
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
