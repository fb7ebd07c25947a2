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
                EachService { RegisterTaskDefinition() }
            }
            """)
        let sha = try project.sha("HEAD", in: "repo")
        let home = TemporaryDirectory()
        let environment = LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }

        let first = try runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
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

        let second = try runProcess(Project.executable, ["run", "staging"], in: repo, environment: environment)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.contains("task definition unchanged: reusing \(arn)"), "\(second.stdout)")
        withExtendedLifetime(project) {}
    }
}

/// Register, then point the ECS service at the new revision, through `pipeline run` against moto.
@Suite struct UpdateServiceStageTests {
    @Test func theServiceIsPointedAtTheRegisteredRevision() async throws {
        let (project, repo) = try projectRepository(
            """
            import PipelineDSL

            Pipeline("deploy-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .serviceName("{service}-staging")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"])
                Service("expense-service", repository: "sv-expense", port: 5001, protocol: .grpc)
                EachService {
                    RegisterTaskDefinition()
                    UpdateService(waitForStable: false)
                }
            }
            """)
        let home = TemporaryDirectory()
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        let before = try await client.describeService(cluster: "staging-cluster", service: "expense-service-staging")

        let result = try runProcess(
            Project.executable, ["run", "staging"], in: repo,
            environment: LocalAWS.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new })
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let outputs = try String(contentsOf: home.url.appending(path: "runs/1/outputs/expense-service.deploy.json"), encoding: .utf8)
        #expect(outputs.contains("\"previousTaskDefinition\" : \"\(before.taskDefinition)\""))
        let registered = try #require(
            try JSONDecoder().decode([String: String].self, from: Data(contentsOf: home.url.appending(path: "runs/1/outputs/expense-service.register.json")))["taskDefinitionArn"])
        #expect(try await client.describeService(cluster: "staging-cluster", service: "expense-service-staging").taskDefinition == registered)
        #expect(registered != before.taskDefinition)
        withExtendedLifetime(project) {}
    }
}
