import Foundation
import Runner
import Testing
import TestSupport

/// The four DORA keys for a scripted week of deploys and rollbacks: `pipeline stats` (text and JSON), the API's
/// twin and the page with its charts agree with what was worked out by hand.
@Suite struct StatsTests {
    /// The week: staging's user-service deploys four times (lead times 1 h, 4 h, 1 h and 24 h), one deploy fails its
    /// health check and is rolled back 30 min after its run started, and one is rolled back by hand 2 h after it
    /// went out; prod's api-service deploys once (lead time 2 h); a deploy ten days ago is outside the window, and a
    /// run that left user-service as it was is no deployment of it.
    static func script(_ store: StateStore, now: Date) throws {
        let hour = 3600.0, day = 86400.0
        func at(_ offset: Double) -> Date { now.addingTimeInterval(offset) }
        func run(_ environment: String, commitAt: Date?, startedAt: Date, trigger: String = "cli") throws -> Int {
            let (record, _) = try store.createRun(
                environment: environment, sha: String(repeating: "a", count: 40), ref: "main", trigger: trigger, user: "dev",
                commit: commitAt.map { CommitFacts(author: "Dev <dev@example.com>", time: $0, subject: "a change") })
            try store.database.execute("UPDATE runs SET status = 'succeeded', started_at = ?, finished_at = ? WHERE id = ?",
                [.real(startedAt.timeIntervalSince1970), .real(startedAt.timeIntervalSince1970 + 600), .integer(Int64(record.id))])
            return record.id
        }
        func record(
            _ run: Int, _ environment: String, _ service: String, _ kind: DeploymentRecord.Kind, at time: Date, trigger: String = "cli",
            unchanged: Bool = false
        ) throws {
            let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/\(service):\(unchanged ? 1 : run)"
            try store.recordDeployment(DeploymentRecord(
                run: run, environment: environment, service: service, kind: kind, sha: String(repeating: "a", count: 40), image: nil, digest: nil,
                taskDefinitionArn: arn, taskDefinition: nil,
                previousTaskDefinitionArn: unchanged ? arn : nil, trigger: trigger, approvedBy: nil, createdAt: time))
        }
        try record(try run("staging", commitAt: at(-10 * day - hour), startedAt: at(-10 * day)), "staging", "user-service", .deploy, at: at(-10 * day))
        // A manual rollback before any deploy of the window undoes no change of it: counted as a rollback, not a failure.
        try record(try run("staging", commitAt: nil, startedAt: at(-6.5 * day - 60), trigger: "rollback"), "staging", "user-service", .rollback,
            at: at(-6.5 * day), trigger: "rollback")
        try record(try run("staging", commitAt: at(-6 * day - hour), startedAt: at(-6 * day - 600)), "staging", "user-service", .deploy, at: at(-6 * day))
        try record(try run("staging", commitAt: at(-5 * day - 4 * hour), startedAt: at(-5 * day - 600)), "staging", "user-service", .deploy, at: at(-5 * day))
        try record(try run("staging", commitAt: at(-4 * day - hour), startedAt: at(-4 * day)), "staging", "user-service", .rollback, at: at(-4 * day + 1800))
        try record(try run("staging", commitAt: at(-3 * day - hour), startedAt: at(-3 * day - 600)), "staging", "user-service", .deploy, at: at(-3 * day))
        try record(try run("staging", commitAt: nil, startedAt: at(-3 * day + 2 * hour - 60), trigger: "rollback"), "staging", "user-service", .rollback,
            at: at(-3 * day + 2 * hour), trigger: "rollback")
        try record(try run("staging", commitAt: at(-2 * day), startedAt: at(-1 * day - 600)), "staging", "user-service", .deploy, at: at(-1 * day))
        try record(try run("prod", commitAt: at(-2 * day - 2 * hour), startedAt: at(-2 * day - 600)), "prod", "api-service", .deploy, at: at(-2 * day))
        // A run that left user-service on the revision it ran (another service changed) deployed nothing to it.
        try record(try run("staging", commitAt: at(-day), startedAt: at(-0.5 * day - 600)), "staging", "user-service", .deploy, at: at(-0.5 * day), unchanged: true)
    }

    @Test func aScriptedWeekOfDeploysAndRollbacks() async throws {
        let served = try await ServedPipeline()
        try Self.script(try served.store, now: Date())

        let output = try await served.pipeline("stats", "--since", "7d", "--json")
        #expect(output.status == 0, "\(output.stderr)")
        let stats = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        let services = try #require(stats?["services"] as? [[String: Any]])
        let user = try #require(services.first { $0["service"] as? String == "user-service" })
        #expect(user["environment"] as? String == "staging")
        #expect(user["deployments"] as? Int == 4)
        #expect(abs((user["deploymentsPerDay"] as? Double ?? 0) - 4.0 / 7) < 0.001)
        #expect(user["leadTimeMedian"] as? Double == 3600)
        #expect(user["leadTime90"] as? Double == 86400)
        #expect(user["changes"] as? Int == 5 && user["failedChanges"] as? Int == 2)
        #expect(user["automaticRollbacks"] as? Int == 1 && user["manualRollbacks"] as? Int == 2)
        #expect(user["changeFailureRate"] as? Double == 0.4)
        #expect(user["timeToRestoreMedian"] as? Double == 1800)
        let api = try #require(services.first { $0["service"] as? String == "api-service" })
        #expect(api["environment"] as? String == "prod" && api["deployments"] as? Int == 1 && api["leadTimeMedian"] as? Double == 7200)
        #expect(api["changeFailureRate"] as? Double == 0 && api["timeToRestoreMedian"] == nil)
        #expect((stats?["leadTimes"] as? [Double])?.count == 5)

        // One environment; the table; an unknown environment is refused with exit 2 and the known ones named.
        let prod = try await served.pipeline("stats", "--env", "prod", "--since", "7d", "--json")
        #expect((try JSONSerialization.jsonObject(with: Data(prod.stdout.utf8)) as? [String: Any])?["services"].map { ($0 as? [Any])?.count } == 1)
        let table = try await served.pipeline("stats", "--since", "7d")
        #expect(table.stdout.contains("user-service") && table.stdout.contains("40% (2 of 5)") && table.stdout.contains("1, 2"), "\(table.stdout)")
        let unknown = try await served.pipeline("stats", "--env", "nope")
        #expect(unknown.status == 2 && unknown.stderr.contains("unknown environment 'nope'"), "\(unknown.stderr)")
        for bad in ["1e300d", "0x10d", "0d", "30"] {
            let refused = try await served.pipeline("stats", "--since", bad)
            #expect(refused.status == 2 && refused.stderr.contains("is not an age"), "\(bad): \(refused.stderr)")
        }
        let wider = try await served.pipeline("stats", "--since", "2w", "--json")
        #expect(wider.stdout.contains("\"deployments\" : 5"), "\(wider.stdout)")

        // The API answers the same figures; the page draws both charts.
        let browser = Browser(served.url)
        _ = try await browser.signIn("carol")
        let json = try await browser.get("/api/v1/stats?days=7")
        let apiServices = (try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any])?["services"] as? [[String: Any]]
        #expect(apiServices?.first { $0["service"] as? String == "user-service" }?["changeFailureRate"] as? Double == 0.4)
        let page = try await browser.get("/stats?days=7").text
        #expect(page.contains("Deploys per week") && page.contains("Lead time for changes") && page.components(separatedBy: "<svg").count == 3, "\(page)")
        #expect(page.contains("40% (2 of 5)"))
        #expect(try await browser.get("/stats?env=%3Cscript%3E").status == 404)
        #expect(try await browser.get("/stats?days=0").status == 400)
    }
}
