import Foundation

/// One service deploy (or rollback) that reached its end: what runs where, from which commit.
public struct DeploymentRecord: Sendable, Equatable {
    /// The kinds of deployment.
    public enum Kind: String, Sendable {
        /// A deploy that passed its health check.
        case deploy
        /// The service put back on an earlier task definition (automatically, or by `pipeline rollback`).
        case rollback
    }

    /// Its number.
    public let id: Int
    /// The run that made it.
    public let run: Int?
    /// The environment.
    public let environment: String
    /// The pipeline's service name.
    public let service: String
    /// deploy or rollback.
    public let kind: Kind
    /// The full git SHA whose image runs ("" when it could not be told).
    public let sha: String
    /// The image reference in the task definition.
    public let image: String?
    /// The image's digest, when known.
    public let digest: String?
    /// The task definition's ARN.
    public let taskDefinitionArn: String?
    /// The full rendered task definition (JSON), for registering it again when its revision is gone.
    public let taskDefinition: String?
    /// The task definition that ran before.
    public let previousTaskDefinitionArn: String?
    /// What started it (cli, hook, watch, rollback, resume).
    public let trigger: String?
    /// Who approved it, where a gate applied.
    public let approvedBy: String?
    /// When.
    public let createdAt: Date
    /// What the image is built from (the build stage's key), when a build stage made or found it.
    public let buildKey: String?

    /// A deploy that changed nothing: the service already ran this revision, and the run only checked its health
    /// (an unchanged service). It verifies the commit there, but is no deployment in the delivery figures.
    public var unchanged: Bool { kind == .deploy && previousTaskDefinitionArn != nil && previousTaskDefinitionArn == taskDefinitionArn }

    /// The kind as shown: `deploy`, `rollback`, or `unchanged` for a deploy that changed nothing.
    public var shownKind: String { unchanged ? "unchanged" : kind.rawValue }

    /// A record (its id is set by the store).
    public init(
        id: Int = 0, run: Int?, environment: String, service: String, kind: Kind, sha: String, image: String?, digest: String?,
        taskDefinitionArn: String?, taskDefinition: String?, previousTaskDefinitionArn: String?, trigger: String?,
        approvedBy: String?, createdAt: Date = Date(), buildKey: String? = nil
    ) {
        self.buildKey = buildKey
        self.id = id
        self.run = run
        self.environment = environment
        self.service = service
        self.kind = kind
        self.sha = sha
        self.image = image
        self.digest = digest
        self.taskDefinitionArn = taskDefinitionArn
        self.taskDefinition = taskDefinition
        self.previousTaskDefinitionArn = previousTaskDefinitionArn
        self.trigger = trigger
        self.approvedBy = approvedBy
        self.createdAt = createdAt
    }
}

extension StateStore {
    /// Appends a deployment record, once: the same run recording the same kind of change of the same service to
    /// the same revision again (a stage re-run after its runner died between the two writes) adds nothing.
    @discardableResult
    public func recordDeployment(_ record: DeploymentRecord) throws -> Int {
        let text = { (value: String?) in value.map(SQLValue.text) ?? .null }
        let rows = try database.query(
            """
            INSERT INTO deployments (run_id, run_number, environment, service, kind, sha, image, image_digest,
                task_definition_arn, task_definition_json, previous_task_definition_arn, trigger, approved_by, created_at, build_key)
            SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
            WHERE ?1 IS NULL OR NOT EXISTS (
                SELECT 1 FROM deployments WHERE run_id = ?1 AND service = ?4 AND kind = ?5 AND task_definition_arn IS ?9)
            RETURNING id
            """,
            [
                record.run.map { .integer(Int64($0)) } ?? .null, record.run.map { .integer(Int64($0)) } ?? .null,
                .text(record.environment), .text(record.service), .text(record.kind.rawValue), .text(record.sha),
                text(record.image), text(record.digest), text(record.taskDefinitionArn), text(record.taskDefinition),
                text(record.previousTaskDefinitionArn), text(record.trigger), text(record.approvedBy),
                .real(record.createdAt.timeIntervalSince1970), text(record.buildKey),
            ])
        return rows.first?["id"].int ?? 0
    }

    /// The deployments of `service` in `environment` (every environment when nil), newest first.
    public func deployments(service: String, environment: String?, limit: Int = 1000) throws -> [DeploymentRecord] {
        let rows = if let environment {
            try database.query(
                "SELECT * FROM deployments WHERE service = ? AND environment = ? ORDER BY id DESC LIMIT ?",
                [.text(service), .text(environment), .integer(Int64(limit))])
        } else {
            try database.query(
                "SELECT * FROM deployments WHERE service = ? ORDER BY id DESC LIMIT ?", [.text(service), .integer(Int64(limit))])
        }
        return try rows.map(Self.deploymentRecord)
    }

    private static func deploymentRecord(_ row: Row) throws -> DeploymentRecord {
        DeploymentRecord(
            id: row["id"].int ?? 0, run: row["run_number"].int ?? row["run_id"].int, environment: row["environment"].string ?? "",
            service: row["service"].string ?? "", kind: try known(DeploymentRecord.Kind.self, row["kind"], of: "deployment \(row["id"].int ?? 0)"),
            sha: row["sha"].string ?? "", image: row["image"].string, digest: row["image_digest"].string,
            taskDefinitionArn: row["task_definition_arn"].string, taskDefinition: row["task_definition_json"].string,
            previousTaskDefinitionArn: row["previous_task_definition_arn"].string, trigger: row["trigger"].string,
            approvedBy: row["approved_by"].string, createdAt: Date(timeIntervalSince1970: row["created_at"].double ?? 0),
            buildKey: row["build_key"].string)
    }

    /// The newest deploy of `service` in `environment` whose image was built from `buildKey`: there, a deploy is
    /// recorded only once its health check (else its rollout) passed, so this is the image that environment verified.
    /// A deploy the environment then rolled back (the first later record that moved the service off its revision is
    /// a rollback) no longer counts: the environment backed it out.
    public func verifiedDeployment(service: String, environment: String, buildKey: String) throws -> DeploymentRecord? {
        let rows = try database.query(
            """
            SELECT * FROM deployments d WHERE environment = ?1 AND service = ?2 AND build_key = ?3 AND kind = 'deploy' AND image_digest IS NOT NULL
            AND NOT EXISTS (
                SELECT 1 FROM deployments n WHERE n.kind = 'rollback' AND n.id = (
                    SELECT MIN(m.id) FROM deployments m WHERE m.environment = d.environment AND m.service = d.service AND m.id > d.id
                    AND m.task_definition_arn IS NOT d.task_definition_arn))
            ORDER BY id DESC LIMIT 1
            """,
            [.text(environment), .text(service), .text(buildKey)])
        return try rows.first.map(Self.deploymentRecord)
    }
}
