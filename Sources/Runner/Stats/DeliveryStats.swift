import Foundation

/// The four DORA keys per environment and service, worked out from the deployment records:
/// - deployment frequency: deploys that passed their health check (a run that left a service on the revision it
///   ran, and only checked its health, deployed nothing there: `unchanged` records are not counted);
/// - lead time for changes: from the deployed commit's time to the deploy passing its health check;
/// - change failure rate: changes that were undone, by an automatic rollback (a deploy that failed its health check
///   and was put back) or a manual one (`pipeline rollback`, which undoes the service's last deploy), over all
///   changes attempted (the deploys plus the failed ones rolled back automatically);
/// - time to restore: from the failed change going out (the start of the run whose deploy failed; for a manual
///   rollback, the time the deploy it undid went live) to the rollback that restored the service.
public struct DeliveryStats: Codable, Sendable, Equatable {
    /// The window: from `since` to `until`.
    public let since: Date
    public let until: Date
    /// One row per environment and service with any deployment record in the window.
    public let services: [ServiceFigures]
    /// Deploys per week (weeks starting on Monday, UTC) per environment, oldest first.
    public let weeks: [WeekCount]
    /// Every lead time in the window (seconds), for the distribution.
    public let leadTimes: [Double]

    public struct ServiceFigures: Codable, Sendable, Equatable {
        public let environment: String
        public let service: String
        /// Deploys that passed their health check.
        public let deployments: Int
        /// Deploys per day over the window.
        public let deploymentsPerDay: Double
        /// Median and 90th percentile lead time (seconds); nil without a commit time to measure from.
        public let leadTimeMedian: Double?
        public let leadTime90: Double?
        /// Changes attempted, and those undone (automatically or by hand).
        public let changes: Int
        public let failedChanges: Int
        public let automaticRollbacks: Int
        public let manualRollbacks: Int
        /// failedChanges / changes; nil without a change.
        public let changeFailureRate: Double?
        /// Median time to restore (seconds); nil without a restore.
        public let timeToRestoreMedian: Double?
    }

    public struct WeekCount: Codable, Sendable, Equatable {
        public let environment: String
        /// The Monday the week starts on (UTC), `YYYY-MM-DD`.
        public let week: String
        public let deployments: Int
    }
}

extension StateStore {
    /// The DORA keys from `since` to `until`, for one environment or all.
    public func deliveryStats(environment: String?, since: Date, until: Date = Date()) throws -> DeliveryStats {
        var parameters: [SQLValue] = [.real(since.timeIntervalSince1970), .real(until.timeIntervalSince1970)]
        if let environment { parameters.append(.text(environment)) }
        let rows = try database.query(
            """
            SELECT d.id, d.environment, d.service, d.kind, d.trigger, d.created_at, r.commit_time, r.started_at
            FROM deployments d LEFT JOIN runs r ON r.id = COALESCE(d.run_id, d.run_number)
            WHERE d.created_at >= ? AND d.created_at <= ?\(environment == nil ? "" : " AND d.environment = ?")
            AND NOT (d.kind = 'deploy' AND d.previous_task_definition_arn IS NOT NULL AND d.previous_task_definition_arn = d.task_definition_arn)
            ORDER BY d.created_at, d.id
            """, parameters)
        struct Key: Hashable, Comparable {
            let environment: String, service: String
            static func < (a: Key, b: Key) -> Bool { (a.environment, a.service) < (b.environment, b.service) }
        }
        var byService: [Key: [Row]] = [:]
        for row in rows {
            byService[Key(environment: row["environment"].string ?? "", service: row["service"].string ?? ""), default: []].append(row)
        }
        let days = max(until.timeIntervalSince(since) / 86400, 1.0 / 24)
        var figures: [DeliveryStats.ServiceFigures] = []
        var allLeadTimes: [Double] = []
        var weekly: [String: [String: Int]] = [:]
        for key in byService.keys.sorted() {
            var deploys = 0, automatic = 0, manual = 0, manualRollbacks = 0
            var leadTimes: [Double] = [], restores: [Double] = []
            var lastDeployAt: Double?
            for row in byService[key]! {
                let at = row["created_at"].double ?? 0
                if row["kind"].string == "deploy" {
                    deploys += 1
                    lastDeployAt = at
                    weekly[key.environment, default: [:]][Self.week(of: at), default: 0] += 1
                    if let commit = row["commit_time"].double { leadTimes.append(max(0, at - commit)) }
                } else if row["trigger"].string == "rollback" {
                    manualRollbacks += 1
                    // A manual rollback undoes the service's last deploy; one after another (or before any deploy in
                    // the window) undoes no change of the window.
                    if let lastDeployAt {
                        manual += 1
                        restores.append(max(0, at - lastDeployAt))
                    }
                    lastDeployAt = nil
                } else {
                    automatic += 1
                    if let started = row["started_at"].double { restores.append(max(0, at - started)) }
                }
            }
            allLeadTimes += leadTimes
            let changes = deploys + automatic
            figures.append(DeliveryStats.ServiceFigures(
                environment: key.environment, service: key.service, deployments: deploys, deploymentsPerDay: Double(deploys) / days,
                leadTimeMedian: Self.percentile(leadTimes, 0.5), leadTime90: Self.percentile(leadTimes, 0.9),
                changes: changes, failedChanges: automatic + manual, automaticRollbacks: automatic, manualRollbacks: manualRollbacks,
                changeFailureRate: changes == 0 ? nil : Double(automatic + manual) / Double(changes),
                timeToRestoreMedian: Self.percentile(restores, 0.5)))
        }
        let weeks = weekly.keys.sorted().flatMap { environment in
            weekly[environment]!.keys.sorted().map { DeliveryStats.WeekCount(environment: environment, week: $0, deployments: weekly[environment]![$0]!) }
        }
        return DeliveryStats(since: since, until: until, services: figures, weeks: weeks, leadTimes: allLeadTimes.sorted())
    }

    /// The nearest-rank percentile of `values`.
    static func percentile(_ values: [Double], _ fraction: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The Monday (UTC) of the week holding `time`, as `YYYY-MM-DD`.
    static func week(of time: Double) -> String {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = Date(timeIntervalSince1970: time)
        let monday = calendar.dateInterval(of: .weekOfYear, for: date)?.start ?? date
        let parts = calendar.dateComponents([.year, .month, .day], from: monday)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}
