import Foundation

/// One owner per run. A run that a process runs (queued or running) has a lease: the owner's identity, an expiry,
/// and a fencing token that grows with every new owner. `takeOwnership` is the only way to become the owner; every
/// write an owner makes goes through `fenced`, which refuses it once a newer owner exists; `reconcile` interrupts
/// runs whose owner is provably gone. A second store (PostgreSQL) implements the same contract.
extension StateStore {
    /// Makes `owner` the owner of run `id` when the run's status is one of `statuses` and no live process owns it
    /// (a run whose owner is provably gone is interrupted first). The run becomes queued, with a new fencing token;
    /// `why` (run, resume, approve, ...) is kept as an event. Refused with an `OwnershipRefusal`, changing nothing.
    public func takeOwnership(
        of id: Int, accepting statuses: Set<RunStatus>, owner: RunOwner = .current, why: String
    ) throws -> RunLease {
        try database.transaction { () throws -> RunLease in
            guard var run = try run(id) else { throw DatabaseError(code: -1, description: "there is no run \(id)") }
            if run.status.hasOwner, run.pid != nil {
                guard !OwnerLiveness.isAlive(run) else {
                    throw OwnershipRefusal(
                        run: run,
                        description: "run \(id) is running under \(run.owner?.description ?? "pid \(run.pid ?? 0)") (\(run.trigger), started by \(run.user)); only one runner may run it — follow it with `pipeline logs \(id) --follow`",
                        owned: true)
                }
                _ = try interrupt(run)
                run = try self.run(id) ?? run
            }
            guard statuses.contains(run.status) else {
                throw OwnershipRefusal(run: run, description: try Self.notContinuable(run, store: self), owned: false)
            }
            let updated = try database.query(
                """
                UPDATE runs SET status = 'queued', pid = ?, owner_host = ?, owner_started = ?, lease_expires_at = ?,
                    heartbeat_at = ?, fence = fence + 1, finished_at = NULL, message = NULL
                WHERE id = ? AND fence = ? RETURNING fence
                """,
                [
                    .integer(Int64(owner.pid)), .text(owner.host), .text(owner.started), .real(now() + RunLease.duration),
                    .real(now()), .integer(Int64(id)), .integer(Int64(run.fence)),
                ])
            guard let fence = updated.first?["fence"].int else {
                throw OwnershipRefusal(run: run, description: "run \(id) changed hands while it was being taken; try again", owned: true)
            }
            try addEvent(id, stage: nil, kind: "run.owned", message: "\(why): owned by \(owner) (token \(fence))")
            return RunLease(run: id, fence: fence, owner: owner)
        }
    }

    /// Runs `body` in one transaction if `lease` is still the run's latest; otherwise throws `LeaseLost` and
    /// writes nothing.
    public func fenced<T>(_ lease: RunLease, _ body: () throws -> T) throws -> T {
        try database.transaction { () throws -> T in
            try requireLatest(lease)
            return try body()
        }
    }

    /// Extends the lease by `RunLease.duration`; throws `LeaseLost` when a newer owner exists.
    public func renew(_ lease: RunLease) throws {
        try database.transaction {
            let renewed = try database.query(
                "UPDATE runs SET lease_expires_at = ?, heartbeat_at = ? WHERE id = ? AND fence = ? RETURNING id",
                [.real(now() + RunLease.duration), .real(now()), .integer(Int64(lease.run)), .integer(Int64(lease.fence))])
            guard !renewed.isEmpty else { try requireLatest(lease); return }
            try database.execute("UPDATE locks SET heartbeat_at = ? WHERE run_id = ?", [.real(now()), .integer(Int64(lease.run))])
        }
    }

    private func requireLatest(_ lease: RunLease) throws {
        let fence = try database.query("SELECT fence FROM runs WHERE id = ?", [.integer(Int64(lease.run))]).first?["fence"].int
        guard fence != lease.fence else { return }
        guard let run = try run(lease.run) else { throw LeaseLost(run: lease.run, detail: "the run's record is gone") }
        guard run.fence == lease.fence else {
            let holder = run.status.hasOwner ? "it is owned by \(run.owner?.description ?? "pid \(run.pid ?? 0)") now" : "it is \(run.status.rawValue) now"
            throw LeaseLost(run: lease.run, detail: "\(holder), token \(run.fence) after this runner's \(lease.fence)")
        }
    }

    /// Interrupts every queued or running run whose owner is provably gone (a queued one that never started is
    /// cancelled), fencing that owner, and ends the processes it left on this host. Returns the runs it changed.
    @discardableResult
    public func reconcile() throws -> [RunRecord] {
        let open = try database.query("SELECT * FROM runs WHERE status IN ('queued', 'running')").map { try Self.run($0) }
        var marked: [RunRecord] = []
        for run in open where run.pid != nil && !OwnerLiveness.isAlive(run) {
            guard try database.transaction({ try interrupt(run) }) else { continue }
            if run.owner == nil || run.owner?.host == ProcessIdentity.hostName {
                StrayProcesses.killRun(marker: run.marker, before: run.fence + 1)
            }
            if let updated = try self.run(run.id) { marked.append(updated) }
        }
        return marked
    }

    /// `reconcile`, for commands that only read: a failure to record what it found (a full disk) is said on stderr
    /// and the command goes on with what the records say.
    public func reconcileIfPossible() {
        do {
            try reconcile()
        } catch {
            FileHandle.standardError.write(Data("warning: could not mark runs whose runner is gone as interrupted: \(error)\n".utf8))
        }
    }

    /// Marks `run` (as read) interrupted, or cancelled when it never started, with a new token so that its old
    /// owner can write nothing more; false when the run changed meanwhile.
    private func interrupt(_ run: RunRecord) throws -> Bool {
        let moved = try database.query(
            "UPDATE runs SET fence = fence + 1, lease_expires_at = NULL WHERE id = ? AND fence = ? AND status IN ('queued', 'running') RETURNING id",
            [.integer(Int64(run.id)), .integer(Int64(run.fence))])
        guard !moved.isEmpty else { return false }
        let owner = run.owner?.description ?? "pid \(run.pid ?? 0)"
        if run.status == .running {
            try interruptRunningStages(of: run.id, message: "its runner stopped while it ran")
            try setRunStatus(
                run.id, .interrupted, message: "its runner (\(owner)) stopped without finishing it; `pipeline resume \(run.id)` continues it")
            try addEvent(run.id, stage: nil, kind: "run.interrupted", message: OwnerLiveness.whyGone(run))
        } else {
            try setRunStatus(run.id, .cancelled, message: "its runner (\(owner)) went away while it waited in the queue")
        }
        return true
    }

    /// Marks the stages of `run` still recorded as running interrupted: their runner stopped.
    public func interruptRunningStages(of run: Int, message: String) throws {
        try database.execute(
            "UPDATE stage_runs SET status = 'interrupted', finished_at = ?, message = ? WHERE run_id = ? AND status = 'running'",
            [.real(now()), .text(message), .integer(Int64(run))])
    }

    /// Why `run` cannot be continued, and what to do instead.
    static func notContinuable(_ run: RunRecord, store: StateStore) throws -> String {
        switch run.status {
        case .waiting:
            return "run \(run.id) waits for approval; decide on it: `pipeline approve \(run.environment) --run \(run.id)` or `pipeline reject \(run.environment) --run \(run.id) --reason TEXT`"
        case .succeeded, .rolledBack, .superseded:
            return "run \(run.id) has ended (\(run.status.rawValue)); there is nothing to continue — start a new run with `pipeline run \(run.environment)`"
        case .approved:
            return "run \(run.id) was approved and waits for a runner to continue it: `pipeline resume \(run.id)`"
        default:
            return "run \(run.id) is \(run.status.rawValue); only an interrupted, failed or cancelled run can be resumed"
        }
    }
}
