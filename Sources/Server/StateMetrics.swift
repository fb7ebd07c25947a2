import Foundation
import PipelineDSL
import Prometheus
import Runner
import Synchronization

/// `GET /metrics`: the pipeline's figures in the Prometheus text format, kept in a swift-prometheus registry (each
/// with its HELP text, so `promtool check metrics` is clean).
///
/// Every figure comes from the state when it is scraped, not from what this process happened to see: counters
/// are brought up to the totals the state holds, and each run ending, finished stage and AWS request is observed
/// once into the histograms. So a restarted server reports the same totals, and runs started from the CLI count too.
/// The figures count from tables `pipeline gc` leaves alone (run starts and endings, stage endings, deployments,
/// AWS requests), so removing old runs changes no total.
final class StateMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let store: StateStore
    private let manifest: Manifest
    private let progress = Mutex(Progress())

    /// What has been counted and observed so far.
    private struct Progress {
        var counted: [String: Int64] = [:]
        var endingsSeen = 0
        var stageEndingsSeen = 0
        var awsSeen = 0
    }

    private static let help: [String: String] = [
        "runs_started": "Runs started, by environment and trigger.",
        "runs": "Run endings, by environment, final status and trigger (a run resumed after it ended ends again).",
        "run_duration": "How long runs took from start to end, by environment and final status.",
        "stage_duration": "How long stages took, by kind and status.",
        "stage_attempts": "Stage attempts, by kind.",
        "stage_retries": "Stage attempts after the first (retries), by kind.",
        "deployments": "Deployment records: deploys that passed their health check, and rollbacks, by environment, service and kind.",
        "rollbacks": "Rollbacks by environment, service and kind (automatic: a failed deploy put back; manual: pipeline rollback).",
        "runs_waiting_for_approval": "Runs waiting at an approval gate, by environment.",
        "runs_queued": "Runs queued for their environment's lock, by environment.",
        "runs_running": "Runs running (or approved and going on), by environment.",
        "aws_requests": "AWS requests the stages made, by service, operation and outcome (each attempt of a retried request counts).",
        "aws_request_duration": "How long the stages' AWS requests took, by service and operation.",
    ]

    private static func name(_ metric: String, unit: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "pipeline", metricName: metric, unitName: unit, helpText: help[metric] ?? metric)
    }

    private static let runBuckets: [Duration] = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600].map { .seconds($0) }
    private static let stageBuckets: [Duration] = [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800].map { .milliseconds(Int64($0 * 1000)) }
    private static let requestBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .microseconds(Int64($0 * 1_000_000)) }

    init(store: StateStore, manifest: Manifest) {
        self.store = store
        self.manifest = manifest
    }

    /// The text Prometheus scrapes, brought up to date with the state first.
    func render() throws -> [UInt8] {
        try progress.withLock { progress in try refresh(&progress) }
        return registry.emitToBuffer()
    }

    private func refresh(_ progress: inout Progress) throws {
        for row in try store.database.query("SELECT environment, trigger, COUNT(*) AS n FROM run_starts GROUP BY environment, trigger") {
            count(&progress, "runs_started", ["environment": row["environment"].string ?? "", "trigger": row["trigger"].string ?? ""], row["n"].int ?? 0)
        }
        for row in try store.database.query("SELECT environment, status, trigger, COUNT(*) AS n FROM run_endings GROUP BY environment, status, trigger") {
            count(&progress, "runs",
                ["environment": row["environment"].string ?? "", "status": row["status"].string ?? "", "trigger": row["trigger"].string ?? ""], row["n"].int ?? 0)
        }
        // What runs, waits and queues now.
        var now: [String: Int] = [:]
        for row in try store.database.query(
            "SELECT environment, status, COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running', 'waiting', 'approved') GROUP BY environment, status")
        {
            now["\(row["environment"].string ?? "")\u{0}\(row["status"].string ?? "")"] = row["n"].int ?? 0
        }
        for environment in manifest.environments.map(\.name) {
            for (metric, statuses) in [("runs_waiting_for_approval", ["waiting"]), ("runs_queued", ["queued"]), ("runs_running", ["running", "approved"])] {
                let value = statuses.reduce(0) { $0 + (now["\(environment)\u{0}\($1)"] ?? 0) }
                registry.makeGauge(descriptor: Self.name(metric, unit: ""), labels: [("environment", environment)]).set(to: Double(value))
            }
        }
        // Run durations, each ending once.
        for row in try store.database.query(
            "SELECT id, environment, status, started_at, finished_at FROM run_endings WHERE id > ? ORDER BY id", [.integer(Int64(progress.endingsSeen))])
        {
            progress.endingsSeen = max(progress.endingsSeen, row["id"].int ?? 0)
            guard let start = row["started_at"].double, let end = row["finished_at"].double else { continue }
            registry.makeDurationHistogram(
                descriptor: Self.name("run_duration", unit: "seconds"),
                labels: [("environment", row["environment"].string ?? ""), ("status", row["status"].string ?? "")], buckets: Self.runBuckets
            ).recordNanoseconds(Int64(max(0, end - start) * 1e9))
        }
        // Stage durations by kind, each stage ending once; attempts and retries by kind (a stage that ended twice,
        // resumed in between, counts its attempts once).
        let kinds = stageKinds()
        for row in try store.database.query(
            "SELECT id, environment, stage_id, status, started_at, finished_at FROM stage_endings WHERE id > ? ORDER BY id",
            [.integer(Int64(progress.stageEndingsSeen))])
        {
            progress.stageEndingsSeen = max(progress.stageEndingsSeen, row["id"].int ?? 0)
            guard let start = row["started_at"].double, let end = row["finished_at"].double else { continue }
            let kind = kinds["\(row["environment"].string ?? "")\u{0}\(row["stage_id"].string ?? "")"] ?? "unknown"
            registry.makeDurationHistogram(
                descriptor: Self.name("stage_duration", unit: "seconds"), labels: [("kind", kind), ("status", row["status"].string ?? "")],
                buckets: Self.stageBuckets
            ).recordNanoseconds(Int64(max(0, end - start) * 1e9))
        }
        var attempts: [String: (Int, Int)] = [:]
        for row in try store.database.query(
            """
            SELECT environment, stage_id, SUM(attempts) AS attempts, SUM(MAX(attempts - 1, 0)) AS retries
            FROM (SELECT environment, stage_id, MAX(attempts) AS attempts FROM stage_endings GROUP BY run_id, stage_id) GROUP BY environment, stage_id
            """)
        {
            let kind = kinds["\(row["environment"].string ?? "")\u{0}\(row["stage_id"].string ?? "")"] ?? "unknown"
            attempts[kind, default: (0, 0)].0 += row["attempts"].int ?? 0
            attempts[kind, default: (0, 0)].1 += row["retries"].int ?? 0
        }
        for (kind, (tries, retries)) in attempts {
            count(&progress, "stage_attempts", ["kind": kind], tries)
            count(&progress, "stage_retries", ["kind": kind], retries)
        }
        // Deployments and rollbacks by environment, service and kind.
        for row in try store.database.query(
            "SELECT environment, service, kind, COALESCE(trigger, '') = 'rollback' AS manual, COUNT(*) AS n FROM deployments "
                + "WHERE NOT (kind = 'deploy' AND previous_task_definition_arn IS NOT NULL AND previous_task_definition_arn = task_definition_arn) "
                + "GROUP BY environment, service, kind, manual")
        {
            let labels = ["environment": row["environment"].string ?? "", "service": row["service"].string ?? ""]
            let n = row["n"].int ?? 0
            if row["kind"].string == "rollback" {
                count(&progress, "rollbacks", labels.merging(["kind": (row["manual"].int ?? 0) == 1 ? "manual" : "automatic"]) { $1 }, n)
            }
            count(&progress, "deployments", labels.merging(["kind": row["kind"].string ?? ""]) { $1 }, n)
        }
        // AWS requests the stages made, by service, operation and outcome, with their latency.
        for row in try store.database.query(
            "SELECT id, service, operation, outcome, seconds FROM aws_requests WHERE id > ? ORDER BY id LIMIT 100000", [.integer(Int64(progress.awsSeen))])
        {
            progress.awsSeen = max(progress.awsSeen, row["id"].int ?? 0)
            let service = row["service"].string ?? "", operation = row["operation"].string ?? ""
            registry.makeCounter(
                descriptor: Self.name("aws_requests", unit: "total"),
                labels: [("operation", operation), ("outcome", row["outcome"].string ?? ""), ("service", service)]
            ).increment()
            registry.makeDurationHistogram(
                descriptor: Self.name("aws_request_duration", unit: "seconds"), labels: [("operation", operation), ("service", service)],
                buckets: Self.requestBuckets
            ).recordNanoseconds(Int64((row["seconds"].double ?? 0) * 1e9))
        }
    }

    /// Brings counter `metric` with `labels` up to `total` (never down: runs removed by gc stay counted).
    private func count(_ progress: inout Progress, _ metric: String, _ labels: [String: String], _ total: Int) {
        let dimensions = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let key = metric + dimensions.map { "\u{0}\($0.0)=\($0.1)" }.joined()
        let counter = registry.makeCounter(descriptor: Self.name(metric, unit: "total"), labels: dimensions)
        let delta = Int64(total) - (progress.counted[key] ?? 0)
        if delta > 0 {
            counter.increment(by: delta)
            progress.counted[key] = Int64(total)
        } else if progress.counted[key] == nil {
            progress.counted[key] = 0
        }
    }

    /// Each environment's stage ids and their kinds, from the pipeline.
    private func stageKinds() -> [String: String] {
        var kinds: [String: String] = [:]
        for (environment, stages) in manifest.stages {
            for stage in stages { kinds["\(environment)\u{0}\(stage.id)"] = stage.kind.rawValue }
        }
        return kinds
    }
}
