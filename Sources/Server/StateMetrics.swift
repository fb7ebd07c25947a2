import CoreMetrics
import Foundation
import Metrics
import PipelineDSL
import Prometheus
import Runner
import Synchronization

/// `GET /metrics`: the pipeline's figures in the Prometheus text format, through swift-metrics (counters, gauges,
/// timers) with swift-prometheus behind it.
///
/// Every figure comes from the state when it is scraped, not from what this process happened to see: counters
/// are brought up to the totals the state holds, and each finished run and stage is observed once into the
/// duration histograms. So a restarted server reports the same totals, and runs started from the CLI count too.
/// (Runs removed by `pipeline gc` stay counted while the server runs; after a restart they are gone from the totals.)
final class StateMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let store: StateStore
    private let manifest: Manifest
    private let progress = Mutex(Progress())

    /// What has been counted and observed so far.
    private struct Progress {
        var counted: [String: Int64] = [:]
        var runsSeenUntil: Double = 0
        var runsSeen: Set<Int> = []
        var stagesSeenUntil: Double = 0
        var stagesSeen: Set<String> = []
        var awsSeen = 0
        var gauges: Set<String> = []
    }

    init(store: StateStore, manifest: Manifest) {
        self.store = store
        self.manifest = manifest
        var factory = PrometheusMetricsFactory(registry: registry)
        let long: [Duration] = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600].map { .seconds($0) }
        factory.durationHistogramBuckets = [
            "pipeline_run_duration_seconds": long,
            "pipeline_stage_duration_seconds": [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800].map { .milliseconds(Int64($0 * 1000)) },
        ]
        factory.defaultDurationHistogramBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .microseconds(Int64($0 * 1_000_000)) }
        self.factory = factory
    }

    /// The text Prometheus scrapes, brought up to date with the state first.
    func render() throws -> [UInt8] {
        try progress.withLock { progress in try refresh(&progress) }
        return registry.emitToBuffer()
    }

    private func refresh(_ progress: inout Progress) throws {
        // Runs started, by environment and trigger; runs ended, by environment, final status and trigger.
        for row in try store.database.query("SELECT environment, trigger, COUNT(*) AS n FROM runs GROUP BY environment, trigger") {
            count(&progress, "pipeline_runs_started_total", ["environment": row["environment"].string ?? "", "trigger": row["trigger"].string ?? ""], row["n"].int ?? 0)
        }
        let final = RunStatus.allCases.filter { $0.isFinal && $0 != .interrupted }.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        for row in try store.database.query(
            "SELECT environment, status, trigger, COUNT(*) AS n FROM runs WHERE status IN (\(final)) GROUP BY environment, status, trigger")
        {
            count(&progress, "pipeline_runs_total",
                ["environment": row["environment"].string ?? "", "status": row["status"].string ?? "", "trigger": row["trigger"].string ?? ""], row["n"].int ?? 0)
        }
        // What runs, waits and queues now.
        var now: [String: Int] = [:]
        for row in try store.database.query("SELECT environment, status, COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running', 'waiting', 'approved') GROUP BY environment, status") {
            now["\(row["environment"].string ?? "")\u{0}\(row["status"].string ?? "")"] = row["n"].int ?? 0
        }
        for environment in manifest.environments.map(\.name) {
            for (name, statuses) in [("pipeline_runs_waiting_for_approval", ["waiting"]), ("pipeline_runs_queued", ["queued"]), ("pipeline_runs_running", ["running", "approved"])] {
                let value = statuses.reduce(0) { $0 + (now["\(environment)\u{0}\($1)"] ?? 0) }
                Gauge(label: name, dimensions: [("environment", environment)], factory: factory).record(value)
            }
        }
        // Run durations, each finished run once.
        let runs = try store.database.query(
            "SELECT id, environment, status, started_at, finished_at FROM runs WHERE finished_at IS NOT NULL AND started_at IS NOT NULL AND finished_at >= ? AND status IN (\(final)) ORDER BY finished_at",
            [.real(progress.runsSeenUntil - 1)])
        for row in runs {
            guard let id = row["id"].int, !progress.runsSeen.contains(id), let start = row["started_at"].double, let end = row["finished_at"].double else { continue }
            progress.runsSeen.insert(id)
            progress.runsSeenUntil = max(progress.runsSeenUntil, end)
            Timer(label: "pipeline_run_duration_seconds", dimensions: [("environment", row["environment"].string ?? ""), ("status", row["status"].string ?? "")], factory: factory)
                .recordNanoseconds(Int64(max(0, end - start) * 1e9))
        }
        progress.runsSeen = progress.runsSeen.filter { _ in progress.runsSeen.count < 10_000 }
        // Stage durations by kind, each finished stage once; attempts and retries by kind.
        let kinds = stageKinds()
        let stages = try store.database.query(
            """
            SELECT s.run_id, s.stage_id, s.status, s.started_at, s.finished_at, r.environment FROM stage_runs s JOIN runs r ON r.id = s.run_id
            WHERE s.finished_at IS NOT NULL AND s.started_at IS NOT NULL AND s.finished_at >= ? ORDER BY s.finished_at
            """, [.real(progress.stagesSeenUntil - 1)])
        for row in stages {
            let key = "\(row["run_id"].int ?? 0) \(row["stage_id"].string ?? "")"
            guard !progress.stagesSeen.contains(key), let start = row["started_at"].double, let end = row["finished_at"].double else { continue }
            progress.stagesSeen.insert(key)
            progress.stagesSeenUntil = max(progress.stagesSeenUntil, end)
            let kind = kinds["\(row["environment"].string ?? "")\u{0}\(row["stage_id"].string ?? "")"] ?? "unknown"
            Timer(label: "pipeline_stage_duration_seconds", dimensions: [("kind", kind), ("status", row["status"].string ?? "")], factory: factory)
                .recordNanoseconds(Int64(max(0, end - start) * 1e9))
        }
        var attempts: [String: (Int, Int)] = [:]
        for row in try store.database.query(
            "SELECT r.environment, s.stage_id, SUM(s.attempts) AS attempts, SUM(MAX(s.attempts - 1, 0)) AS retries FROM stage_runs s JOIN runs r ON r.id = s.run_id GROUP BY r.environment, s.stage_id")
        {
            let kind = kinds["\(row["environment"].string ?? "")\u{0}\(row["stage_id"].string ?? "")"] ?? "unknown"
            attempts[kind, default: (0, 0)].0 += row["attempts"].int ?? 0
            attempts[kind, default: (0, 0)].1 += row["retries"].int ?? 0
        }
        for (kind, (tries, retries)) in attempts {
            count(&progress, "pipeline_stage_attempts_total", ["kind": kind], tries)
            count(&progress, "pipeline_stage_retries_total", ["kind": kind], retries)
        }
        // Deployments and rollbacks by environment, service and kind (a rollback is manual when `pipeline rollback`
        // made it, automatic when a failed deploy did).
        for row in try store.database.query(
            """
            SELECT d.environment, d.service, d.kind, COALESCE(r.trigger, '') = 'rollback' AS manual, COUNT(*) AS n
            FROM deployments d LEFT JOIN runs r ON r.id = d.run_id GROUP BY d.environment, d.service, d.kind, manual
            """)
        {
            let labels = ["environment": row["environment"].string ?? "", "service": row["service"].string ?? ""]
            let n = row["n"].int ?? 0
            if row["kind"].string == "rollback" {
                count(&progress, "pipeline_rollbacks_total", labels.merging(["kind": (row["manual"].int ?? 0) == 1 ? "manual" : "automatic"]) { $1 }, n)
            }
            count(&progress, "pipeline_deployments_total", labels.merging(["kind": row["kind"].string ?? ""]) { $1 }, n)
        }
        // AWS requests the stages made, by service, operation and outcome, with their latency.
        for row in try store.database.query(
            "SELECT id, service, operation, outcome, seconds FROM aws_requests WHERE id > ? ORDER BY id LIMIT 100000", [.integer(Int64(progress.awsSeen))])
        {
            progress.awsSeen = max(progress.awsSeen, row["id"].int ?? 0)
            let service = row["service"].string ?? "", operation = row["operation"].string ?? ""
            Counter(label: "pipeline_aws_requests_total", dimensions: [("operation", operation), ("outcome", row["outcome"].string ?? ""), ("service", service)], factory: factory)
                .increment()
            Timer(label: "pipeline_aws_request_duration_seconds", dimensions: [("operation", operation), ("service", service)], factory: factory)
                .recordNanoseconds(Int64((row["seconds"].double ?? 0) * 1e9))
        }
    }

    /// Brings counter `name` with `labels` up to `total` (never down: runs removed by gc stay counted).
    private func count(_ progress: inout Progress, _ name: String, _ labels: [String: String], _ total: Int) {
        let dimensions = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let key = name + dimensions.map { "\u{0}\($0.0)=\($0.1)" }.joined()
        let counter = Counter(label: name, dimensions: dimensions, factory: factory)
        let delta = Int64(total) - (progress.counted[key] ?? 0)
        if progress.counted[key] == nil { counter.increment(by: 0) }  // a zero total is shown as 0, not left out
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
