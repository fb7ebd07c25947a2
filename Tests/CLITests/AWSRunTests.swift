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
        let result = try await runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
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
        let result = try await runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("stage 'use': secret TOKEN cannot be read from AWS Secrets Manager: secretsmanager GetSecretValue: ResourceNotFoundException"), "\(result.stderr)")
        #expect(result.stderr.contains("stage 'use': secret PASSWORD cannot be read from AWS Secrets Manager: secretsmanager GetSecretValue: UnusableSecret: secret aws-run/\(id)/db has no key password; its keys are user"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.url.appending(path: "home/runs/1").path))
    }

    @Test func theRepositorysTokenComesFromSecretsManagerAndOnlyTheFetchesSeeIt() async throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let certificates = TemporaryDirectory("pipeline-tls")
        let tls = try TestCertificates(in: certificates)
        let id = UUID().uuidString.prefix(8)
        let token = "tok-\(id)-git"
        _ = try await createSecret("aws-run/\(id)/git", #"{"token": "\#(token)"}"#)
        let server = ServerProcess.script(
            "git-http-server", [fixture.root.path, "--cert", tls.certificate, "--key", tls.key],
            environment: ["GIT_SERVER_TOKEN": token])
        defer { _ = server }
        let port = try server.port()
        let folder = TemporaryDirectory()
        func write(token reference: String) {
            folder.write(
                "pipelines/Pipeline.swift",
                """
                import PipelineDSL

                Pipeline("app", repository: "https://localhost:\(port)/app", token: \(reference)) {
                    Environment("staging", branch: "staging", region: "us-east-1", cluster: "c")
                        .assumeRole("arn:aws:iam::123456789012:role/deployer-role", sessionName: "git-token")
                    Checkout(submodules: true)
                    Shell("look", "cat deep/er/file.txt vendor/lib/lib.txt; echo token=$PIPELINE_GIT_TOKEN")
                }
                """)
        }
        var environment = LocalAWS.environment.merging(
            ["PIPELINE_HOME": folder.url.appending(path: "home").path, "SSL_CERT_FILE": tls.ca]) { _, new in new }
        environment["PIPELINE_GIT_TOKEN"] = ""

        write(token: #".secretsManager("aws-run/\#(id)/git", key: "token")"#)
        let result = try await runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        // The submodule is fetched over HTTPS by the checkout stage, with the token; other stages never get it.
        #expect(result.stdout.contains("[look] hello\n[look] library one\n[look] token=\n"), "\(result.stdout)")
        var scanned = 0
        for file in FileManager.default.enumerator(atPath: folder.url.path)!.compactMap({ $0 as? String })
        where !file.hasPrefix("home/cache/pipelines") {
            guard let data = FileManager.default.contents(atPath: folder.url.appending(path: file).path) else { continue }
            scanned += 1
            #expect(!String(decoding: data, as: UTF8.self).contains(token), "\(file) holds the token")
        }
        #expect(scanned > 5)

        write(token: #".environment("APP_GIT_TOKEN")"#)
        let unset = try await runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(unset.status == 2)
        #expect(unset.stderr.contains("the repository's token comes from the environment variable APP_GIT_TOKEN, which is not set; export it before the run"), "\(unset.stderr)")
        environment["APP_GIT_TOKEN"] = token
        let set = try await runProcess(Project.executable, ["run", "staging"], in: folder.url, environment: environment)
        #expect(set.status == 0, "\(set.stdout)\(set.stderr)")

        // pipeline watch fetches with the same token: without it the fetch is refused, with it the staging commit is
        // found already deployed and nothing starts.
        let watched = try await runProcess(Project.executable, ["watch", "--once"], in: folder.url, environment: environment)
        #expect(watched.status == 0 && watched.stderr.isEmpty && watched.stdout.isEmpty, "\(watched.stdout)\(watched.stderr)")
        environment["APP_GIT_TOKEN"] = nil
        let unwatched = try await runProcess(Project.executable, ["watch", "--once"], in: folder.url, environment: environment)
        #expect(unwatched.stderr.contains("staging: the repository's token comes from the environment variable APP_GIT_TOKEN"), "\(unwatched.stderr)")
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
