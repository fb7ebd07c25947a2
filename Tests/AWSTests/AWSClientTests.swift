import Foundation
import HTTP
import TestSupport
import Testing

@testable import AWS

private func error(_ code: String, status: Int) -> AWSError {
    AWSError(service: "ecs", operation: "UpdateService", code: code, message: "m", requestID: nil, status: status)
}

@Suite struct RetryPolicyTests {
    @Test(arguments: [
        ("ThrottlingException", 400, true), ("TooManyRequestsException", 429, true), ("InternalFailure", 500, true),
        ("ServiceUnavailable", 503, true), ("connect", 0, true), ("timeout", 0, true),
        ("AccessDeniedException", 403, false), ("SignatureDoesNotMatch", 403, false), ("ValidationException", 400, false),
        ("ClientException", 400, false), ("UnrecognizedClientException", 403, false), ("request", 0, false),
    ])
    func onlyThrottlingAndTransientErrorsAreRetried(code: String, status: Int, retryable: Bool) {
        #expect(RetryPolicy.isRetryable(error(code, status: status)) == retryable)
    }

    @Test func backoffGrowsExponentiallyWithFullJitterAndACap() {
        let policy = RetryPolicy()
        #expect(policy.backoff(afterAttempt: 1, unit: 0.999) < 1)
        #expect(policy.backoff(afterAttempt: 3, unit: 0.5) == 2)
        #expect(policy.backoff(afterAttempt: 12, unit: 0.99) == 20)
        #expect(policy.backoff(afterAttempt: 3, unit: 0) == 0)
    }

    @Test func theRetryQuotaRunsOutAndRefills() {
        var policy = RetryPolicy()
        var retries = 0
        while policy.spend(for: error("ThrottlingException", status: 400)) { retries += 1 }
        #expect(retries == 100)
        policy.refund()
        let afterOneRefund = policy.spend(for: error("ThrottlingException", status: 400))
        #expect(!afterOneRefund)
        for _ in 0..<5 { policy.refund() }
        let afterFive = policy.spend(for: error("ThrottlingException", status: 400))
        #expect(afterFive)
    }
}

@Suite struct AWSErrorTests {
    @Test func jsonErrorsNameTheirCodeAndRequest() {
        let decoded = AWSError.decode(
            service: "ecs", operation: "UpdateService", status: 400,
            headers: [("x-amzn-RequestId", "req-1")],
            body: Array(#"{"__type":"com.amazonaws.ecs#ServiceNotFoundException","message":"Service not found."}"#.utf8))
        #expect(decoded.code == "ServiceNotFoundException")
        #expect(decoded.description == "ecs UpdateService: ServiceNotFoundException: Service not found. (request id req-1)")
    }

    @Test func xmlErrorsToo() {
        let decoded = AWSError.decode(
            service: "sts", operation: "GetCallerIdentity", status: 403, headers: [],
            body: Array("<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>a &amp; b</Message></Error><RequestId>r2</RequestId></ErrorResponse>".utf8))
        #expect(decoded.code == "SignatureDoesNotMatch")
        #expect(decoded.message == "a & b")
        #expect(decoded.requestID == "r2")
    }

    @Test func aClockSkewErrorSaysSo() {
        #expect(error("RequestTimeTooSkewed", status: 403).description.contains("clock is off"))
    }
}

@Suite struct AWSConfigurationTests {
    @Test func environmentBeatsFilesAndProfilesAreRead() async throws {
        let folder = TemporaryDirectory()
        folder.write("credentials", "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n[team]\naws_access_key_id=AKTEAM\naws_secret_access_key=s2\naws_session_token=t2\n")
        folder.write("config", "[default]\nregion = eu-west-1\n[profile team]\nregion = eu-central-1\n")
        let files = [
            "AWS_SHARED_CREDENTIALS_FILE": folder.url.appending(path: "credentials").path,
            "AWS_CONFIG_FILE": folder.url.appending(path: "config").path,
        ]
        let fromFiles = try AWSConfiguration.resolve(environment: files)
        #expect(try await fromFiles.credentials.credentials() == AWSCredentials(accessKeyID: "AKDEFAULT", secretAccessKey: "s1"))
        #expect(fromFiles.region == "eu-west-1")
        let team = try AWSConfiguration.resolve(environment: files.merging(["AWS_PROFILE": "team"]) { a, _ in a })
        #expect(try await team.credentials.credentials() == AWSCredentials(accessKeyID: "AKTEAM", secretAccessKey: "s2", sessionToken: "t2"))
        #expect(team.region == "eu-central-1")
        let env = try AWSConfiguration.resolve(
            environment: files.merging(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s3", "AWS_REGION": "us-west-2"]) { a, _ in a })
        #expect(try await env.credentials.credentials().accessKeyID == "AKENV")
        #expect(env.credentialSource == "environment")
        #expect(env.region == "us-west-2")
        #expect(throws: AWSError.self) { try AWSConfiguration.resolve(environment: ["HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"]) }
    }
}

/// Calls against moto with signatures checked (runner/local-aws).
@Suite struct AWSAgainstMotoTests {
    struct DescribeServices: Encodable {
        let cluster: String
        let services: [String]
    }

    struct Services: Decodable {
        struct Service: Decodable {
            let serviceName: String
            let taskDefinition: String
            let desiredCount: Int
        }
        let services: [Service]
    }

    /// The stand-in hands out ECR tokens as AWS does (good for 12 hours), so the product trusts the expiry it is
    /// given; stock moto's is in 2015, which the product once read as "12 hours" itself.
    @Test func anECRTokenExpiresTwelveHoursOn() async throws {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let token = try await client.ecrAuthorization()
        let hours = token.expiresAt.timeIntervalSinceNow / 3600
        #expect(hours > 11.9 && hours <= 12, "\(token.expiresAt)")
    }

    @Test func signedCallsAreAcceptedAndAWrongSecretIsRefusedWithoutRetrying() async throws {
        let configuration = try AWSConfiguration.resolve(environment: LocalAWS.environment)
        let client = AWSClient(configuration: configuration)
        #expect(try await client.callerIdentity().arn == "arn:aws:iam::123456789012:user/deployer")
        let services = try await client.json(
            .ecs, targetPrefix: "AmazonEC2ContainerServiceV20141113", operation: "DescribeServices",
            input: DescribeServices(cluster: "staging-cluster", services: ["user-service-staging"]), as: Services.self)
        #expect(services.services.map(\.serviceName) == ["user-service-staging"])
        #expect(services.services.first?.desiredCount == 1)

        var wrong = LocalAWS.environment
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = AWSClient(configuration: try AWSConfiguration.resolve(environment: wrong))
        await #expect {
            try await refused.callerIdentity()
        } throws: { ($0 as? AWSError)?.code == "SignatureDoesNotMatch" && ($0 as? AWSError)?.attempts == 1 }
    }

    @Test func transientErrorsAreRetriedUpToTheLimit() async throws {
        let unavailable = ServerProcess.python(
            "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n"
                + "    def do_POST(self):\n        self.rfile.read(int(self.headers['Content-Length']))\n"
                + "        self.send_response(503); self.send_header('Content-Length', '0'); self.end_headers()\n"
                + "    def log_message(self, *a): pass\n"
                + "s = http.server.HTTPServer(('127.0.0.1', 0), H); print(s.server_address[1], flush=True); s.serve_forever()\n")
        var environment = LocalAWS.environment
        environment["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:\(try unavailable.port())"
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: environment), retry: RetryPolicy(maxAttempts: 2))
        await #expect {
            try await client.callerIdentity()
        } throws: { ($0 as? AWSError)?.status == 503 && ($0 as? AWSError)?.attempts == 2 }
    }

    @Test func whoamiThroughTheCLI() throws {
        let result = try runProcess(Project.executable, ["aws", "whoami"], environment: LocalAWS.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("account      123456789012"))
        #expect(result.stdout.contains("route53              \(LocalAWS.environment["AWS_ENDPOINT_URL_ROUTE_53"]!) (serviceVariable)"))
        var wrong = LocalAWS.environment
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = try runProcess(Project.executable, ["aws", "whoami"], environment: wrong)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("sts GetCallerIdentity: SignatureDoesNotMatch"))
        #expect(!refused.stderr.contains("not-the-secret"))
    }
}

/// The ECS calls against moto with signatures checked.
@Suite struct ECSCallsTests {
    @Test func registerDescribeListAndUpdate() async throws {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let family = "api-service-staging"
        let request = Data(
            """
            {"family": "\(family)", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
             "containerDefinitions": [{"name": "api-service", "image": "sv-core-api@sha256:\(String(repeating: "a", count: 64))",
                                       "essential": true, "portMappings": [{"containerPort": 5003}]}]}
            """.utf8)
        let registered = try await client.registerTaskDefinition(request)
        #expect(registered.family == family)
        #expect(registered.revision >= 2, "the bootstrap revision came first")
        #expect(registered.images == ["sv-core-api@sha256:\(String(repeating: "a", count: 64))"])
        #expect(try await client.describeTaskDefinition(registered.taskDefinitionArn) == registered)
        let revisions = try await client.listTaskDefinitions(family: family)
        #expect(revisions.first == registered.taskDefinitionArn)

        let updated = try await client.updateService(cluster: "staging-cluster", service: family, taskDefinition: registered.taskDefinitionArn)
        #expect(updated.taskDefinition == registered.taskDefinitionArn)
        let described = try await client.describeService(cluster: "staging-cluster", service: family)
        #expect(described.taskDefinition == registered.taskDefinitionArn)
        #expect(described.runningCount == 1)

        await #expect {
            try await client.describeService(cluster: "staging-cluster", service: "no-such-service")
        } throws: { "\($0)".contains("no service no-such-service in cluster staging-cluster") }
        await #expect {
            try await client.registerTaskDefinition(Data(#"{"family": "x"}"#.utf8))
        } throws: { ($0 as? AWSError)?.status == 400 || ($0 as? AWSError)?.status == 500 }
    }
}

/// The Route 53 calls against the Route 53 moto (runner/local-aws).
@Suite struct Route53CallsTests {
    @Test func findTheZoneUpsertARecordAndFollowTheChange() async throws {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let zone = try #require(try await client.hostedZone(named: "staging.comyno.net"))
        #expect(zone.name == "staging.comyno.net.")
        #expect(try await client.hostedZone(named: "nowhere.example") == nil)

        let name = "user-service-\(UUID().uuidString.prefix(8).lowercased()).staging.comyno.net"
        #expect(try await client.recordSet(zone: zone.id, name: name, type: "CNAME") == nil)
        let change = Route53.Change(action: "UPSERT", name: name, type: "CNAME", ttl: 60, values: ["lb.example.com"])
        let (id, status) = try await client.changeRecordSets(zone: zone.id, changes: [change], comment: "pipeline test")
        #expect(!id.isEmpty)
        #expect(["PENDING", "INSYNC"].contains(status))
        #expect(try await client.changeStatus(id) == "INSYNC")
        let record = try #require(try await client.recordSet(zone: zone.id, name: name, type: "CNAME"))
        #expect(record.values == ["lb.example.com"])
        #expect(record.ttl == 60)

        await #expect {
            try await client.changeRecordSets(zone: "NOSUCHZONE", changes: [change], comment: "x")
        } throws: { ($0 as? AWSError)?.code == "NoSuchHostedZone" }
    }
}
