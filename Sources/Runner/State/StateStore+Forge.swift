import Foundation
import StageContract

/// What the forge (GitHub) was last told of one run, so that each change is reported once, across restarts.
public struct ForgeReport: Sendable, Equatable {
    /// The run.
    public var run: Int
    /// The commit status last set (`pending`, `success`, `failure`, `error`) and its description.
    public var statusState: String?
    public var statusDescription: String?
    /// The GitHub deployment made for the run, and its last deployment status.
    public var deploymentID: Int?
    public var deploymentState: String?
    /// Reports that failed in a row, the last error, and when to try again.
    public var failures: Int
    public var lastError: String?
    public var nextTry: Date?

    public init(run: Int) {
        self.run = run
        failures = 0
    }
}

extension StateStore {
    /// Records webhook delivery `id` of `forge`; false when it was recorded before (a redelivery).
    public func recordDelivery(forge: String, id: String, event: String, outcome: String) throws -> Bool {
        let rows = try database.query(
            "INSERT INTO webhook_deliveries (forge, delivery, event, received_at, outcome) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING delivery",
            [.text(forge), .text(id), .text(event), .real(Date().timeIntervalSince1970), .text(outcome)])
        return !rows.isEmpty
    }

    /// What became of a delivery.
    public func setDeliveryOutcome(forge: String, id: String, outcome: String) throws {
        try database.execute("UPDATE webhook_deliveries SET outcome = ? WHERE forge = ? AND delivery = ?", [.text(outcome), .text(forge), .text(id)])
    }

    /// Forgets a delivery whose work could not be done, so that its redelivery tries again.
    public func forgetDelivery(forge: String, id: String) throws {
        try database.execute("DELETE FROM webhook_deliveries WHERE forge = ? AND delivery = ?", [.text(forge), .text(id)])
    }

    /// The outcome recorded for a delivery.
    public func deliveryOutcome(forge: String, id: String) throws -> String? {
        try database.query("SELECT outcome FROM webhook_deliveries WHERE forge = ? AND delivery = ?", [.text(forge), .text(id)]).first?["outcome"].string
    }

    /// What the forge was last told of `run`.
    public func forgeReport(run: Int) throws -> ForgeReport? {
        guard let row = try database.query("SELECT * FROM forge_reports WHERE run_id = ?", [.integer(Int64(run))]).first else { return nil }
        var report = ForgeReport(run: run)
        report.statusState = row["status_state"].string
        report.statusDescription = row["status_description"].string
        report.deploymentID = row["deployment_id"].int
        report.deploymentState = row["deployment_state"].string
        report.failures = row["failures"].int ?? 0
        report.lastError = row["last_error"].string
        report.nextTry = row["next_try_at"].double.map { Date(timeIntervalSince1970: $0) }
        return report
    }

    /// Saves what the forge was told of a run.
    public func saveForgeReport(_ report: ForgeReport) throws {
        func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
        try database.execute(
            """
            INSERT INTO forge_reports (run_id, status_state, status_description, deployment_id, deployment_state, updated_at, failures, last_error, next_try_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (run_id) DO UPDATE SET status_state = excluded.status_state, status_description = excluded.status_description,
                deployment_id = excluded.deployment_id, deployment_state = excluded.deployment_state, updated_at = excluded.updated_at,
                failures = excluded.failures, last_error = excluded.last_error, next_try_at = excluded.next_try_at
            """,
            [.integer(Int64(report.run)), text(report.statusState), text(report.statusDescription),
             report.deploymentID.map { .integer(Int64($0)) } ?? .null, text(report.deploymentState), .real(Date().timeIntervalSince1970),
             .integer(Int64(report.failures)), text(report.lastError), report.nextTry.map { .real($0.timeIntervalSince1970) } ?? .null])
    }
}

extension StateStore {
    /// The services `run` rolled back, in the order it did.
    public func rolledBackServices(run: Int) throws -> [String] {
        try database.query(
            "SELECT service FROM deployments WHERE run_id = ? AND kind = 'rollback' GROUP BY service ORDER BY MIN(id)", [.integer(Int64(run))]
        ).compactMap { $0["service"].string }
    }
}

extension StateStore {
    /// Moves what a stage noted of its AWS requests into the state (for `pipeline serve`'s metrics), then removes
    /// the file; part of the stage's end, so that a restarted runner never counts a request twice.
    public func recordAWSRequests(run: Int, stage: String, from file: URL) throws {
        let lines = try AWSRequestLine.read(file)
        let at = Date().timeIntervalSince1970
        for line in lines {
            try database.execute(
                "INSERT INTO aws_requests (run_id, stage_id, service, operation, outcome, seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.integer(Int64(run)), .text(stage), .text(line.service), .text(line.operation), .text(line.outcome), .real(line.seconds), .real(at)])
        }
        if unlink(file.path) != 0 && errno != ENOENT {
            throw DatabaseError(code: -1, description: "cannot remove \(file.path) after recording it: \(String(cString: strerror(errno)))")
        }
    }
}

extension StateStore {
    /// The runs created since `since` with a commit whose report to the forge has not reached a final state yet
    /// (or whose run goes on again, resumed), oldest first, at most 500.
    public func runsToReport(since: Date) throws -> [RunRecord] {
        let rows = try database.query(
            """
            SELECT r.* FROM runs r LEFT JOIN forge_reports f ON f.run_id = r.id
            WHERE r.created_at >= ? AND r.sha IS NOT NULL AND (f.next_try_at IS NULL OR f.next_try_at <= ?)
              AND (f.run_id IS NULL OR f.deployment_state IS NULL OR f.deployment_state NOT IN ('success', 'failure', 'error', 'inactive')
                   OR r.status IN ('queued', 'running', 'waiting', 'approved'))
            ORDER BY r.id LIMIT 500
            """, [.real(since.timeIntervalSince1970), .real(Date().timeIntervalSince1970)])
        return try rows.map { try Self.run($0) }
    }
}
