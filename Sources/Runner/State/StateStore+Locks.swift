import Foundation

/// The answer to asking for an environment's lock.
public enum LockAttempt: Sendable, Equatable {
    /// The run holds the lock now.
    case acquired
    /// Another live run holds it.
    case busy(owner: RunRecord)
    /// It is free, but an older queued run goes first.
    case queuedBehind(RunRecord)
}

extension StateStore {
    /// One try at the lock of `environment` for the run `lease` owns: one active run per environment, queued runs
    /// in order, a lock whose owner is provably gone taken over.
    public func tryAcquireLock(environment: String, lease: RunLease) throws -> LockAttempt {
        try reconcile()
        let id = lease.run
        return try fenced(lease) { () throws -> LockAttempt in
            if let lock = try database.query("SELECT * FROM locks WHERE environment = ?", [.text(environment)]).first {
                let owner = lock["run_id"].int ?? 0
                if owner == id {
                    try setRunStatus(id, .running)
                    return .acquired
                }
                if let ownerRun = try run(owner) {
                    // A run waiting at an approval gate (or approved, for its runner to come) keeps its environment
                    // with no process of its own.
                    if ownerRun.status == .waiting || ownerRun.status == .approved { return .busy(owner: ownerRun) }
                    if ownerRun.status.hasOwner && OwnerLiveness.isAlive(ownerRun) { return .busy(owner: ownerRun) }
                }
                try database.execute("DELETE FROM locks WHERE environment = ?", [.text(environment)])
            }
            let older = try database.query(
                "SELECT * FROM runs WHERE environment = ? AND status = 'queued' AND id < ? ORDER BY id",
                [.text(environment), .integer(Int64(id))]
            ).map { try Self.run($0) }
            if let first = older.first(where: { $0.pid != nil && OwnerLiveness.isAlive($0) }) {
                return .queuedBehind(first)
            }
            try database.execute(
                "INSERT INTO locks (environment, run_id, pid, heartbeat_at) VALUES (?, ?, ?, ?)",
                [.text(environment), .integer(Int64(id)), .integer(Int64(lease.owner.pid)), .real(now())])
            try setRunStatus(id, .running)
            return .acquired
        }
    }

    /// The run holding `environment`'s lock, if any.
    public func lockOwner(environment: String) throws -> RunRecord? {
        guard let owner = try database.query("SELECT run_id FROM locks WHERE environment = ?", [.text(environment)])
            .first?["run_id"].int
        else { return nil }
        return try run(owner)
    }

    /// The run holding `environment`'s lock, when it waits for approval or its runner is still alive.
    public func liveLockOwner(environment: String) throws -> RunRecord? {
        guard let owner = try lockOwner(environment: environment) else { return nil }
        if owner.status == .waiting || owner.status == .approved { return owner }
        return owner.status.hasOwner && OwnerLiveness.isAlive(owner) ? owner : nil
    }
}
