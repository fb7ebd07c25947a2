import Foundation
import StageContract

/// The state database (`PIPELINE_HOME/state.db`): runs, stage runs, events, locks, and the tables later
/// features fill (deployments, approvals). Every string written here has been masked by the caller.
public final class StateStore: Sendable {
    /// The connection.
    public let database: Database
    /// `PIPELINE_HOME`.
    public let home: URL

    /// Opens the database in `home`, creating and migrating it as needed; the file is readable by its owner only.
    public init(home: URL) throws(DatabaseError) {
        self.home = home
        let path = home.appending(path: "state.db").path
        // Made owner-only before SQLite opens it (its journal files take the database's mode); never by `umask`,
        // which would also reach the files and the children other threads make meanwhile (see `OwnerOnly`).
        do {
            try OwnerOnly.createFile(URL(filePath: path))
        } catch {
            throw DatabaseError(code: -1, description: "\(error)")
        }
        database = try Database(path: path)
        do {
            try Migrations.apply(to: database)
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(code: -1, description: "migrating \(path): \(error)")
        }
    }

    /// The folder of run `id`.
    public func runFolder(_ id: Int) -> URL { home.appending(path: "runs/\(id)") }

    // MARK: Runs

    /// Records a new run, queued for its environment's lock and owned by `owner`, and returns it with its lease.
    public func createRun(
        environment: String, sha: String?, ref: String?, trigger: String, user: String, owner: RunOwner = .current,
        source: String? = nil, commit: CommitFacts? = nil
    ) throws -> (RunRecord, RunLease) {
        try database.transaction { () throws -> (RunRecord, RunLease) in
            let rows = try database.query(
                """
                INSERT INTO runs (environment, status, sha, ref, trigger, user, pid, marker, created_at, heartbeat_at,
                    source, commit_author, commit_time, commit_subject)
                VALUES (?, 'queued', ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                """,
                [
                    .text(environment), sha.map(SQLValue.text) ?? .null, ref.map(SQLValue.text) ?? .null, .text(trigger),
                    .text(user), .text(UUID().uuidString.lowercased()), .real(now()), .real(now()),
                    source.map(SQLValue.text) ?? .null, commit.map { .text($0.author) } ?? .null,
                    commit.map { .real($0.time.timeIntervalSince1970) } ?? .null, commit.map { .text($0.subject) } ?? .null,
                ])
            guard let id = rows.first?["id"].int else { throw DatabaseError(code: -1, description: "the new run was not recorded") }
            // Kept when `pipeline gc` removes the run: the metrics count starts from here.
            try database.execute(
                "INSERT INTO run_starts (run_id, environment, trigger, at) VALUES (?, ?, ?, ?)",
                [.integer(Int64(id)), .text(environment), .text(trigger), .real(now())])
            let lease = try takeOwnership(of: id, accepting: [.queued], owner: owner, why: trigger)
            guard let run = try run(id) else { throw DatabaseError(code: -1, description: "the new run was not recorded") }
            return (run, lease)
        }
    }

    /// The run `id`, if there is one.
    public func run(_ id: Int) throws -> RunRecord? {
        try database.query("SELECT * FROM runs WHERE id = ?", [.integer(Int64(id))]).first.map { try Self.run($0) }
    }

    /// The newest runs first, of one environment or all.
    public func runs(environment: String? = nil, limit: Int = 20) throws -> [RunRecord] {
        let rows = if let environment {
            try database.query(
                "SELECT * FROM runs WHERE environment = ? ORDER BY id DESC LIMIT ?",
                [.text(environment), .integer(Int64(limit))])
        } else {
            try database.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))])
        }
        return try rows.map { try Self.run($0) }
    }

    /// The newest runs (at most `limit`) of `environment`, shown as `status`, started by `trigger`, of a SHA that starts
    /// with `shaPrefix` — each filter only when given; the filters are the query's, so a long history is not read.
    public func runs(environment: String?, status: RunStatus?, trigger: String?, shaPrefix: String?, limit: Int) throws -> [RunRecord] {
        var conditions: [String] = []
        var parameters: [SQLValue] = []
        if let environment {
            conditions.append("environment = ?")
            parameters.append(.text(environment))
        }
        if let status {
            // A queued or running run whose owner is gone shows as interrupted before it is recorded so.
            let stored: [RunStatus] = status == .interrupted ? [.interrupted, .queued, .running] : [status]
            conditions.append("status IN (\(stored.map { _ in "?" }.joined(separator: ", ")))")
            parameters += stored.map { .text($0.rawValue) }
        }
        if let trigger {
            conditions.append("trigger = ?")
            parameters.append(.text(trigger))
        }
        if let shaPrefix {
            conditions.append("substr(sha, 1, ?) = ?")
            parameters += [.integer(Int64(shaPrefix.utf8.count)), .text(shaPrefix)]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        var found: [RunRecord] = []
        var offset = 0
        // Shown status can differ from the stored one: read in pages until `limit` runs match.
        while found.count < limit {
            let rows = try database.query(
                "SELECT * FROM runs \(filter) ORDER BY id DESC LIMIT ? OFFSET ?", parameters + [.integer(Int64(limit)), .integer(Int64(offset))])
            found += try rows.map { try Self.run($0) }.filter { status == nil || $0.shownStatus == status }
            if rows.count < limit { break }
            offset += rows.count
        }
        return Array(found.prefix(limit))
    }

    /// The runs of `environment` that deploy `sha`, newest first, leaving out those cancelled or superseded: a
    /// commit's own trigger starts no run when one of these exists.
    public func deployingRuns(environment: String, sha: String) throws -> [RunRecord] {
        try database.query(
            "SELECT * FROM runs WHERE environment = ? AND sha = ? AND status NOT IN ('cancelled', 'superseded') ORDER BY id DESC",
            [.text(environment), .text(sha)]
        ).map { try Self.run($0) }
    }

    /// Sets a run's status (and message); a final status also sets its end time and releases its lock.
    public func setRunStatus(_ id: Int, _ status: RunStatus, message: String? = nil) throws {
        try database.transaction {
            try database.execute(
                """
                UPDATE runs SET status = ?, message = COALESCE(?, message),
                    started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,
                    finished_at = CASE WHEN ? THEN ? ELSE NULL END
                WHERE id = ?
                """,
                [
                    .text(status.rawValue), message.map(SQLValue.text) ?? .null, .text(status.rawValue), .real(now()),
                    .integer(status.isFinal ? 1 : 0), .real(now()), .integer(Int64(id)),
                ])
            if status.isFinal {
                try database.execute("DELETE FROM locks WHERE run_id = ?", [.integer(Int64(id))])
            }
            if status.isFinal && status != .interrupted {
                // Each ending is kept (a failed run resumed to success ended twice): the metrics count endings.
                try database.execute(
                    """
                    INSERT INTO run_endings (run_id, environment, trigger, status, started_at, finished_at)
                    SELECT id, environment, trigger, status, started_at, finished_at FROM runs WHERE id = ?
                    """, [.integer(Int64(id))])
            }
            if !status.hasOwner {
                // Waiting, approved or ended: no process owns it; the next owner takes a new lease.
                try database.execute("UPDATE runs SET lease_expires_at = NULL WHERE id = ?", [.integer(Int64(id))])
            }
        }
    }

    /// Deletes the records of those of `runs` that have ended (and are not interrupted) as they stand now, in one
    /// transaction, and returns them: a run resumed meanwhile is left alone. Their folders are the caller's to
    /// remove, after this.
    @discardableResult
    public func deleteRuns(_ ids: [Int]) throws -> [Int] {
        try database.transaction { () throws -> [Int] in
            let ended = try ids.filter { id in try run(id).map { $0.status.isFinal && $0.status != .interrupted } ?? false }
            for id in ended {
                for table in ["events", "stage_runs", "approvals"] {
                    try database.execute("DELETE FROM \(table) WHERE run_id = ?", [.integer(Int64(id))])
                }
                // Deployments are the rollback history: they stay, keeping the run's number in run_number.
                try database.execute("UPDATE deployments SET run_id = NULL WHERE run_id = ?", [.integer(Int64(id))])
                try database.execute("DELETE FROM runs WHERE id = ?", [.integer(Int64(id))])
            }
            return ended
        }
    }

    // MARK: Stages and events

    /// Sets a stage's status; `attempt` counts attempts; times are set as the status implies.
    public func setStageStatus(
        _ run: Int, _ stage: String, _ status: StageStatus, attempt: Int? = nil, exitCode: Int32? = nil,
        message: String? = nil
    ) throws {
        try database.transaction {
        try database.execute(
            """
            INSERT INTO stage_runs (run_id, stage_id, status, attempts, started_at, finished_at, exit_code, message)
            VALUES (?1, ?2, ?3, COALESCE(?4, 0), CASE WHEN ?3 = 'running' THEN ?5 END, CASE WHEN ?6 THEN ?5 END, ?7, ?8)
            ON CONFLICT (run_id, stage_id) DO UPDATE SET
                status = ?3, attempts = COALESCE(?4, attempts),
                started_at = COALESCE(started_at, CASE WHEN ?3 = 'running' THEN ?5 END),
                finished_at = CASE WHEN ?6 THEN ?5 ELSE NULL END,
                exit_code = COALESCE(?7, exit_code), message = ?8
            """,
            [
                .integer(Int64(run)), .text(stage), .text(status.rawValue), attempt.map { .integer(Int64($0)) } ?? .null,
                .real(now()), .integer(status.isFinal ? 1 : 0), exitCode.map { .integer(Int64($0)) } ?? .null,
                message.map(SQLValue.text) ?? .null,
            ])
        if status.isFinal {
            // Each end of a stage that ran is kept (gc leaves it): the metrics' stage figures count from here.
            try database.execute(
                """
                INSERT INTO stage_endings (run_id, environment, stage_id, status, attempts, started_at, finished_at)
                SELECT s.run_id, r.environment, s.stage_id, s.status, s.attempts, s.started_at, s.finished_at
                FROM stage_runs s JOIN runs r ON r.id = s.run_id WHERE s.run_id = ? AND s.stage_id = ? AND s.started_at IS NOT NULL
                """, [.integer(Int64(run)), .text(stage)])
        }
        }
    }

    /// The stages of a run that have a record.
    public func stageRuns(_ run: Int) throws -> [StageRunRecord] {
        try database.query("SELECT * FROM stage_runs WHERE run_id = ? ORDER BY rowid", [.integer(Int64(run))]).map { row in
            StageRunRecord(
                stageID: row["stage_id"].string ?? "", status: try known(StageStatus.self, row["status"], of: "stage \(row["stage_id"].string ?? "?") of run \(run)"),
                attempts: row["attempts"].int ?? 0, startedAt: row["started_at"].double.map(Date.init(timeIntervalSince1970:)),
                finishedAt: row["finished_at"].double.map(Date.init(timeIntervalSince1970:)),
                exitCode: row["exit_code"].int, message: row["message"].string)
        }
    }

    /// Adds an event to a run's history.
    public func addEvent(_ run: Int, stage: String?, kind: String, message: String) throws {
        try database.execute(
            "INSERT INTO events (run_id, at, stage_id, kind, message) VALUES (?, ?, ?, ?, ?)",
            [.integer(Int64(run)), .real(now()), stage.map(SQLValue.text) ?? .null, .text(kind), .text(message)])
    }

    /// A run's events, oldest first.
    public func events(_ run: Int) throws -> [EventRecord] {
        try database.query("SELECT * FROM events WHERE run_id = ? ORDER BY id", [.integer(Int64(run))]).map { row in
            EventRecord(
                at: Date(timeIntervalSince1970: row["at"].double ?? 0), stageID: row["stage_id"].string,
                kind: row["kind"].string ?? "", message: row["message"].string ?? "")
        }
    }

    static func run(_ row: Row) throws(DatabaseError) -> RunRecord {
        RunRecord(
            id: row["id"].int ?? 0, environment: row["environment"].string ?? "",
            status: try known(RunStatus.self, row["status"], of: "run \(row["id"].int ?? 0)"), sha: row["sha"].string,
            ref: row["ref"].string, trigger: row["trigger"].string ?? "", user: row["user"].string ?? "",
            pid: row["pid"].int,
            owner: row["owner_host"].string.map { host in
                RunOwner(host: host, pid: Int32(row["pid"].int ?? 0), started: row["owner_started"].string ?? "")
            },
            leaseExpiresAt: row["lease_expires_at"].double.map(Date.init(timeIntervalSince1970:)), fence: row["fence"].int ?? 0,
            marker: row["marker"].string ?? "",
            createdAt: Date(timeIntervalSince1970: row["created_at"].double ?? 0),
            startedAt: row["started_at"].double.map(Date.init(timeIntervalSince1970:)),
            finishedAt: row["finished_at"].double.map(Date.init(timeIntervalSince1970:)), message: row["message"].string,
            source: row["source"].string,
            commit: row["commit_author"].string.map { author in
                CommitFacts(
                    author: author, time: Date(timeIntervalSince1970: row["commit_time"].double ?? 0),
                    subject: row["commit_subject"].string ?? "")
            })
    }
}

func now() -> Double { Date().timeIntervalSince1970 }

/// A status (or kind, or decision) read from the database as this pipeline knows it; one it does not know was
/// written by a newer pipeline, or by hand, and is an error rather than a guess.
func known<Value: RawRepresentable>(_ type: Value.Type, _ value: SQLValue, of what: String) throws(DatabaseError) -> Value
where Value.RawValue == String {
    guard let text = value.string, let known = Value(rawValue: text) else {
        throw DatabaseError(
            code: DatabaseError.unknownValue,
            description: "\(what) has \(String(describing: Value.self)) '\(value.string ?? "NULL")' in the state database, which this pipeline does not know; it was written by a newer pipeline (update this one) or by hand")
    }
    return known
}
