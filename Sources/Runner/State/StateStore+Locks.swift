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
    /// One try at the lock of `environment` for run `id`: one active run per environment, queued runs in order,
    /// a lock whose owner died taken over.
    public func tryAcquireLock(environment: String, run id: Int) throws -> LockAttempt {
        try reconcile()
        return try database.transaction { () throws -> LockAttempt in
            if let lock = try database.query("SELECT * FROM locks WHERE environment = ?", [.text(environment)]).first {
                let owner = lock["run_id"].int ?? 0
                if owner == id { return .acquired }
                // A run waiting at an approval gate keeps its environment, with no process of its own.
                if let ownerRun = try run(owner), ownerRun.status == .waiting { return .busy(owner: ownerRun) }
                if OwnerLiveness.isAlive(pid: lock["pid"].int, heartbeat: lock["heartbeat_at"].double),
                    let ownerRun = try run(owner)
                {
                    return .busy(owner: ownerRun)
                }
                try database.execute("DELETE FROM locks WHERE environment = ?", [.text(environment)])
            }
            let older = try database.query(
                "SELECT * FROM runs WHERE environment = ? AND status = 'queued' AND id < ? ORDER BY id",
                [.text(environment), .integer(Int64(id))]
            ).map(Self.run)
            if let first = older.first(where: { OwnerLiveness.isAlive(pid: $0.pid, heartbeat: nil) }) {
                return .queuedBehind(first)
            }
            guard let me = try run(id) else { throw DatabaseError(code: -1, description: "run \(id) is not recorded") }
            try database.execute(
                "INSERT INTO locks (environment, run_id, pid, heartbeat_at) VALUES (?, ?, ?, ?)",
                [.text(environment), .integer(Int64(id)), .integer(Int64(me.pid ?? 0)), .real(now())])
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
}

extension StateStore {
    /// The run holding `environment`'s lock, when its runner is still alive.
    public func liveLockOwner(environment: String) throws -> RunRecord? {
        guard let owner = try lockOwner(environment: environment) else { return nil }
        return owner.status == .waiting || OwnerLiveness.isAlive(pid: owner.pid, heartbeat: nil) ? owner : nil
    }
}

/// Whether the runner that owns a run or lock is still there.
enum OwnerLiveness {
    /// A heartbeat older than this means the owner hangs or its pid was reused.
    static let staleAfter: Double = 60

    static func isAlive(pid: Int?, heartbeat: Double?) -> Bool {
        guard let pid, pid > 0 else { return false }
        if kill(pid_t(pid), 0) != 0 && errno != EPERM { return false }
        if let heartbeat, now() - heartbeat > staleAfter { return false }
        return true
    }
}
