import AWS
import Foundation
import TestSupport
import Testing

/// What a run asks of AWS before its stages: the environment's role, and secrets from Secrets Manager.
@Suite struct AWSRunTests {
    struct CreateSecret: Encodable {
        let Name: String
        let SecretString: String
    }
    struct Created: Decodable { let ARN: String }

    func createSecret(_ name: String, _ value: String) async throws -> String {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        return try await client.json(
            .secretsManager, targetPrefix: SecretsManager.targetPrefix, operation: "CreateSecret",
            input: CreateSecret(Name: name, SecretString: value), as: Created.self
        ).ARN
    }

    /// A project whose staging environment assumes the local deployer role, with one shell stage given `secrets`.
    func project(_ secrets: String) throws -> (TemporaryDirectory, [String: String]) {
        let folder = TemporaryDirectory()
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("aws-run") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .assumeRole("arn:aws:iam::123456789012:role/deployer-role", sessionName: "aws-run-test")
                Shell("use", "echo \\"token is $TOKEN, password is $PASSWORD\\"")
                    \(secrets)
            }
            """)
        return (folder, LocalAWS.environment.merging(["PIPELINE_HOME": folder.url.appending(path: "home").path]) { _, new in new })
    }

    @Test func secretsManagerValuesReachTheStageAndNeverTheLog() async throws {
        let id = UUID().uuidString.prefix(8)
        let token = "tok-\(id)-s3cr3t"
        _ = try await createSecret("aws-run/\(id)/token", token)
        let arn = try await createSecret("aws-run/\(id)/db", #"{"user": "app", "password": "pw-\#(id)-xyz"}"#)
        let (folder, environment) = try project(
            """
            .secret("TOKEN", .secretsManager("aws-run/\(id)/token"))
                    .secret("PASSWORD", .secretsManager("\(arn)", key: "password"))
            """)
        let result = try runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("[use] token is ***, password is ***"), "\(result.stdout)")
        let log = try String(contentsOf: folder.url.appending(path: "home/runs/1/logs/use.log"), encoding: .utf8)
        #expect(!log.contains(token) && !log.contains("pw-\(id)-xyz"))
    }

    @Test func anUnreadableSecretStopsTheRunBeforeAnyStageNamingIt() async throws {
        let id = UUID().uuidString.prefix(8)
        _ = try await createSecret("aws-run/\(id)/db", #"{"user": "app"}"#)
        let (folder, environment) = try project(
            """
            .secret("TOKEN", .secretsManager("aws-run/\(id)/missing"))
                    .secret("PASSWORD", .secretsManager("aws-run/\(id)/db", key: "password"))
            """)
        let result = try runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("stage 'use': secret TOKEN cannot be read from AWS Secrets Manager: secretsmanager GetSecretValue: ResourceNotFoundException"), "\(result.stderr)")
        #expect(result.stderr.contains("stage 'use': secret PASSWORD cannot be read from AWS Secrets Manager: secretsmanager GetSecretValue: UnusableSecret: secret aws-run/\(id)/db has no key password; its keys are user"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.url.appending(path: "home/runs/1").path))
    }

    @Test func whoamiResolvesAsTheEnvironmentsStagesDo() throws {
        let (folder, environment) = try project("")
        let result = try runProcess(Project.executable, ["aws", "whoami", "--env", "staging"], in: folder.url, environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("identity     arn:aws:sts::123456789012:assumed-role/deployer-role/aws-run-test"), "\(result.stdout)")
        #expect(result.stdout.contains("from role arn:aws:iam::123456789012:role/deployer-role assumed with environment"))
        #expect(result.stdout.contains("expires      "))
    }
}

/// ELBv2 target health, as the health checks read it, against moto.
@Suite struct TargetHealthTests {
    @Test func registeredTargetsAreReportedWithTheirState() async throws {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let groups = try await client.query(
            .elasticLoadBalancingV2, action: "DescribeTargetGroups", version: "2015-12-01", parameters: [("Names.member.1", "frontend-service")])
        let arn = try #require(firstElement("TargetGroupArn", in: groups))
        let address = "10.0.1.\(Int.random(in: 10...250))"
        _ = try await client.query(
            .elasticLoadBalancingV2, action: "RegisterTargets", version: "2015-12-01",
            parameters: [("TargetGroupArn", arn), ("Targets.member.1.Id", address), ("Targets.member.1.Port", "4201")])
        let health = try await client.targetHealth(targetGroup: arn)
        let mine = try #require(health.first { $0.id == address })
        #expect(mine.port == 4201)
        #expect(mine.state == "healthy")
        await #expect {
            try await client.targetHealth(targetGroup: arn.replacingOccurrences(of: "/frontend-service/", with: "/no-such-group/"))
        } throws: { ($0 as? AWSError)?.code == "TargetGroupNotFound" }
    }

    func firstElement(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"), let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex) else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }
}
