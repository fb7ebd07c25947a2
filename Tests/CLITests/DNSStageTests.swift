import AWS
import Foundation
import TestSupport
import Testing

/// The DNS stage through `pipeline run`, against the Route 53 moto of runner/local-aws.
@Suite struct DNSStageTests {
    @Test func upsertsOnceThenSendsNothingWhileTheRecordMatches() async throws {
        let host = "svc-\(UUID().uuidString.prefix(8).lowercased())"
        let project = TemporaryDirectory()
        let write = { (target: String) in
            project.write(
                "pipelines/Pipeline.swift",
                """
                import PipelineDSL

                Pipeline("dns-test") {
                    Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                        .dns(zone: "staging.comyno.net")
                        .variable("LB", "\(target)")
                    Service("api-service", repository: "sv-core-api", port: 5003, protocol: .http).hostname("\(host)")
                    EachService { DNSRecord(.cname("{var.LB}", ttl: 60)) }
                }
                """)
        }
        _ = write("alb-one.example.com")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        let run = { () throws -> ProcessOutput in try runProcess(Project.executable, ["run", "staging"], in: project.url, environment: environment) }

        let first = try run()
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("UPSERT \(host).staging.comyno.net CNAME → alb-one.example.com"))
        #expect(first.stdout.contains("is INSYNC"))
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let zone = try #require(try await client.hostedZone(named: "staging.comyno.net"))
        #expect(try await client.recordSet(zone: zone.id, name: "\(host).staging.comyno.net", type: "CNAME")?.values == ["alb-one.example.com"])

        let again = try run()
        #expect(again.stdout.contains("already points at alb-one.example.com: no change sent"), "\(again.stdout)")

        _ = write("alb-two.example.com")
        let moved = try run()
        #expect(moved.stdout.contains("UPSERT \(host).staging.comyno.net CNAME → alb-two.example.com"), "\(moved.stdout)")
        #expect(try await client.recordSet(zone: zone.id, name: "\(host).staging.comyno.net", type: "CNAME")?.values == ["alb-two.example.com"])
    }

    /// Five services' records in one zone ask Route 53 for the zone once per run (the first DNS stage keeps its id in
    /// the run folder for the others), not once per record.
    @Test func theZoneIsLookedUpOncePerRun() throws {
        let project = TemporaryDirectory()
        let services = (1...5).map { "Service(\"s\($0)\", repository: \"sv-core-api\", port: 5003, protocol: .http).hostname(\"zone-\($0)-\(UUID().uuidString.prefix(6).lowercased())\")" }
        project.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("dns-zone-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster").dns(zone: "staging.comyno.net")
                \(services.joined(separator: "\n    "))
                EachService { DNSRecord(.cname("alb.example.com", ttl: 60)) }
            }
            """)
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path, "PIPELINE_LOG_LEVEL": "debug"]) { _, new in new }
        let result = try runProcess(Project.executable, ["run", "staging"], in: project.url, environment: environment)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let logs = try (1...5).map { try String(contentsOf: home.url.appending(path: "runs/1/logs/s\($0).dns.log"), encoding: .utf8) }
        let lookups = logs.map { $0.components(separatedBy: "route53 ListHostedZonesByName").count - 1 }.reduce(0, +)
        #expect(lookups == 1, "\(logs.joined(separator: "\n"))")
        #expect(logs.allSatisfy { $0.contains("is INSYNC") })
    }
}
