import AWS
import Foundation
import TestSupport
import Testing

/// A git repository holding `pipeline` as pipelines/Pipeline.swift and the reference task-definition templates,
/// committed on main.
private func projectRepository(_ pipeline: String) throws -> (fixture: GitFixture, folder: URL) {
    let project = GitFixture()
    try FileManager.default.createDirectory(at: project.root.appending(path: "repo"), withIntermediateDirectories: true)
    try project.git(["init", "-q"], in: "repo")
    project.folder.write("repo/pipelines/Pipeline.swift", pipeline)
    try FileManager.default.copyItem(
        at: Project.root.appending(path: "pipelines/taskdefs"), to: project.root.appending(path: "repo/pipelines/taskdefs"))
    try project.git(["add", "."], in: "repo")
    try project.git(["commit", "-qm", "pipelines"], in: "repo")
    return (project, project.root.appending(path: "repo"))
}

/// The register stage through `pipeline run`, against moto with signatures checked.
@Suite struct RegisterStageTests {
    @Test func registersOnceThenReusesTheSameRevision() async throws {
        let (project, repo) = try projectRepository(
            """
            import PipelineDSL

            Pipeline("register-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .serviceName("{service}-staging")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"])
                Service("notification-service", repository: "sv-notify", port: 5002, protocol: .grpc)
                EachService { RegisterTaskDefinition(verifyImage: false) }
            }
            """)
        let sha = try project.sha("HEAD", in: "repo")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }

        let first = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let registered = try #require(first.stdout.split(separator: "\n").first { $0.contains("] registered arn:") })
        let arn = String(registered.split(separator: " ").last!)
        #expect(arn.contains(":task-definition/notification-service-staging:"))

        let rendered = try String(
            contentsOf: home.url.appending(path: "runs/1/artifacts/notification-service.register/task-definition.json"), encoding: .utf8)
        #expect(rendered.contains("\"image\" : \"123456789012.dkr.ecr.us-east-1.amazonaws.com/sv-notify:\(sha)\""))
        #expect(rendered.contains("\"value\" : \"\(sha)\""))
        let outputs = try String(contentsOf: home.url.appending(path: "runs/1/outputs/notification-service.register.json"), encoding: .utf8)
        #expect(outputs.contains(arn))

        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        #expect(try await client.describeTaskDefinition(arn).images == ["123456789012.dkr.ecr.us-east-1.amazonaws.com/sv-notify:\(sha)"])

        let second = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.contains("task definition unchanged: reusing \(arn)"), "\(second.stdout)")
        withExtendedLifetime(project) {}
    }
}

/// The register stage refuses an image the registry does not have, before registering anything.
@Suite struct ImageVerificationTests {
    func project() throws -> (GitFixture, URL) {
        try projectRepository(
            """
            import PipelineDSL

            Pipeline("verify-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .serviceName("{service}-verify")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"])
                Service("frontend-service", repository: "frontend-svc", port: 4201, protocol: .http)
                EachService { RegisterTaskDefinition() }
            }
            """)
    }

    struct PutImage: Encodable {
        let repositoryName: String
        let imageManifest: String
        let imageTag: String
    }
    struct Put: Decodable {}

    @Test(arguments: [true, false]) func anImageNeverPushedIsRefusedAndOneThatIsThereIsUsed(localRegistry: Bool) async throws {
        let (project, repo) = try project()
        let sha = try project.sha("HEAD", in: "repo")
        let home = TemporaryDirectory()
        var environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        if !localRegistry { environment["PIPELINE_REGISTRY"] = nil }
        let refused = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(refused.status == 1)
        let expected = localRegistry
            ? "has no image frontend-svc:\(sha); push it first" : "ECR has no image frontend-svc:\(sha) (DescribeImages)"
        #expect(refused.stdout.contains(expected), "\(refused.stdout)")
        #expect(!refused.stdout.contains("registered arn:"))

        if !localRegistry {
            // ECR (moto) gets the image through its own API: then DescribeImages finds the tag.
            let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
            let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#
            _ = try await client.json(
                .ecr, targetPrefix: "AmazonEC2ContainerRegistry_V20150921", operation: "PutImage",
                input: PutImage(repositoryName: "frontend-svc", imageManifest: manifest, imageTag: sha), as: Put.self)
            let accepted = try await runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
            #expect(accepted.status == 0, "\(accepted.stdout)")
            #expect(accepted.stdout.contains("registered arn:"), "\(accepted.stdout)")
        }
        withExtendedLifetime(project) {}
    }
}

/// Register, then point the ECS service at the new revision and wait for the rollout, through `pipeline run`
/// against moto, whose ECS deployments runner/dev/moto-server makes as ECS does (the template's LOCAL_ECS_ROLLOUT
/// variable picks how the rollout ends). On the production cluster's services, which no other test touches.
@Suite struct UpdateServiceStageTests {
    /// A project deploying expense-service to the service `ecsService` with the rollout ending as `rollout` says.
    func project(ecsService: String, rollout: String, noProgress: String = ".minutes(5)", extra: String = "") throws -> (GitFixture, URL) {
        let (project, repo) = try projectRepository(
            """
            import PipelineDSL

            Pipeline("deploy-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "production-cluster")
                    .serviceName("\(ecsService)")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole", "ROLLOUT": "\(rollout)"])
                Service("expense-service", repository: "sv-expense", port: 5001, protocol: .grpc).taskDefinition("taskdefs/rollout.json")
                EachService {
                    RegisterTaskDefinition(verifyImage: false)
                    UpdateService(noProgressTimeout: \(noProgress), pollInterval: .milliseconds(100))
                }
                \(extra)
            }
            """)
        let template = try String(contentsOf: repo.appending(path: "pipelines/taskdefs/expense-service.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"environment\": [", with: "\"environment\": [\n        {\"name\": \"LOCAL_ECS_ROLLOUT\", \"value\": \"{{var.ROLLOUT}}\"},")
        try template.write(to: repo.appending(path: "pipelines/taskdefs/rollout.json"), atomically: true, encoding: .utf8)
        try project.git(["add", "."], in: "repo")
        try project.git(["commit", "-qm", "rollout template"], in: "repo")
        return (project, repo)
    }

    func run(_ repo: URL, home: TemporaryDirectory, environment: [String: String] = [:]) throws -> ProcessOutput {
        try runProcess(
            Project.executable, ["run", "staging"], in: repo,
            environment: LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path].merging(environment) { _, new in new }) { _, new in new })
    }

    func outputs(_ home: TemporaryDirectory, _ stage: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(contentsOf: home.url.appending(path: "runs/1/outputs/\(stage).json")))
    }

    @Test func theServiceRunsTheRegisteredRevisionWhenTheRolloutCompletes() async throws {
        let (project, repo) = try project(ecsService: "expense-service", rollout: "COMPLETED")
        let home = TemporaryDirectory()
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let before = try await client.describeService(cluster: "production-cluster", service: "expense-service")

        let result = try run(repo, home: home)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let registered = try #require(try outputs(home, "expense-service.register")["taskDefinitionArn"])
        let deploy = try outputs(home, "expense-service.deploy")
        #expect(deploy["previousTaskDefinition"] == before.taskDefinition)
        #expect(deploy["stable"] == "true")
        #expect(result.stdout.contains("waiting: 0/1 running, 2 deployments, rollout IN_PROGRESS"), "\(result.stdout)")
        #expect(result.stdout.contains("stable: \(registered) runs 1/1"), "\(result.stdout)")
        let after = try await client.describeService(cluster: "production-cluster", service: "expense-service")
        #expect(after.taskDefinition == registered && registered != before.taskDefinition)
        #expect(after.deployments.map(\.taskDefinition) == [registered])
        withExtendedLifetime(project) {}
    }

    @Test func aFailedRolloutFailsTheStageWithTheServiceEvents() async throws {
        let (project, repo) = try project(ecsService: "user-service", rollout: "FAILED")
        let home = TemporaryDirectory()
        let result = try run(repo, home: home)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/expense-service.deploy.log"), encoding: .utf8)
        #expect(log.contains("the rollout failed: ECS deployment circuit breaker: tasks failed to start."), "\(log)")
        #expect(log.contains("latest events: (service user-service) deployment"), "\(log)")
        // The live revision before the run is kept for a rollback even though the wait failed (a failed stage's
        // outputs stay in its .env file; only a success publishes them to later stages).
        let kept = try String(contentsOf: home.url.appending(path: "runs/1/outputs/expense-service.deploy.env"), encoding: .utf8)
        #expect(kept.contains("previousTaskDefinition=arn:aws:ecs:us-east-1:123456789012:task-definition/user-service:"), "\(kept)")
        withExtendedLifetime(project) {}
    }

    @Test func aRolloutTheCircuitBreakerRolledBackIsAFailureNotSuccess() async throws {
        let (project, repo) = try project(ecsService: "notification-service", rollout: "ROLLED_BACK")
        let home = TemporaryDirectory()
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let before = try await client.describeService(cluster: "production-cluster", service: "notification-service")
        let result = try run(repo, home: home)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/expense-service.deploy.log"), encoding: .utf8)
        #expect(log.contains("did not become stable"), "\(log)")
        #expect(try await client.describeService(cluster: "production-cluster", service: "notification-service").taskDefinition == before.taskDefinition)
        withExtendedLifetime(project) {}
    }

    @Test func aRolloutWithoutProgressStopsAtTheLimitSayingWhatItLastSaw() async throws {
        let (project, repo) = try project(ecsService: "frontend-service", rollout: "STUCK", noProgress: ".seconds(1)")
        let home = TemporaryDirectory()
        let result = try run(repo, home: home)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/expense-service.deploy.log"), encoding: .utf8)
        #expect(log.contains("no progress for 1s; last seen: 0/1 running, 2 deployments, rollout IN_PROGRESS"), "\(log)")
        withExtendedLifetime(project) {}
    }

    /// A secret whose value is also part of what AWS answers (here the account id, in every ARN) is masked wherever a
    /// person sees it, but the stages after the register stage get the ARN as ECS gave it, and the deployment is
    /// recorded on it: before, the deploy waited for a revision named `arn:aws:ecs:…:***:…` and failed.
    @Test func aSecretThatIsPartOfTheARNsIsMaskedWhereShownWithoutBreakingTheDeploy() async throws {
        let (project, repo) = try project(
            ecsService: "api-service", rollout: "COMPLETED",
            extra: #"Shell("announce", "echo account $ACCOUNT").secret("ACCOUNT", .environment("TEST_ACCOUNT"))"#)
        let home = TemporaryDirectory()
        let result = try run(repo, home: home, environment: ["TEST_ACCOUNT": "123456789012"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let shown = try #require(try outputs(home, "expense-service.register")["taskDefinitionArn"])
        #expect(shown.contains(":***:task-definition/") && !shown.contains("123456789012"), "\(shown)")
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let live = try await client.describeService(cluster: "production-cluster", service: "api-service").taskDefinition
        #expect(live == shown.replacingOccurrences(of: "***", with: "123456789012"))
        for log in ["announce", "expense-service.register", "expense-service.deploy"] {
            let text = try String(contentsOf: home.url.appending(path: "runs/1/logs/\(log).log"), encoding: .utf8)
            #expect(!text.contains("123456789012"), "\(text)")
        }
        let deployments = try await runProcess(
            Project.executable, ["deployments", "expense-service", "--env", "staging"], in: repo,
            environment: ["PIPELINE_HOME": home.url.path])
        let revision = String(live.split(separator: "/").last!)  // api-service:N, shown as the revision
        #expect(deployments.status == 0 && deployments.stdout.contains(revision), "\(deployments.stdout)\(deployments.stderr)")
        withExtendedLifetime(project) {}
    }
}
