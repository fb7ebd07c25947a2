import AWS
import Foundation
import TestSupport

/// An application repository deploying one service of the reference platform through the whole chain (checkout,
/// build, push, register, deploy, health check) against the local stand-ins, with that service's health endpoint
/// played by runner/dev/service-server following what ECS (moto) says the service runs: the pipeline's
/// LOCAL_HEALTH variable, rendered into the task definition, decides whether a commit's deploy is healthy.
final class DeployProject: @unchecked Sendable {
    let git = GitFixture()
    let home = TemporaryDirectory("pipeline-deploy-home")
    let service: String
    let ecsService: String
    let repository: String
    let port: Int
    let grpc: Bool
    /// More declarations for the pipeline's body (a forge, say), written with each commit.
    var extraItems = ""
    private let server: PortServer
    private let serverPort: Int
    var repo: URL { git.root.appending(path: "repo") }

    /// The settings of the stand-ins it deploys to.
    let aws: [String: String]

    init(service: String, ecsService: String, repository: String, port: Int, grpc: Bool, aws: [String: String] = LocalAWS.environment) throws {
        self.aws = aws
        self.service = service
        self.ecsService = ecsService
        self.repository = repository
        self.port = port
        self.grpc = grpc
        server = ServerProcess.script(
            "service-server", ["--protocol", grpc ? "grpc" : "http", "--ecs", "staging-cluster/\(ecsService)"],
            environment: aws)
        serverPort = try server.port()
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        _ = try git.git(["init", "-q", "-b", "main"], in: "repo")
        let template = try String(contentsOf: Project.root.appending(path: "pipelines/taskdefs/\(service).json"), encoding: .utf8)
            .replacingOccurrences(
                of: "\"environment\": [",
                with: "\"environment\": [\n        {\"name\": \"LOCAL_HEALTH\", \"value\": \"{{var.LOCAL_HEALTH}}\"},\n        {\"name\": \"LOCAL_ECS_ROLLOUT_LOOKS\", \"value\": \"{{var.ROLLOUT_LOOKS}}\"},")
        git.folder.write("repo/pipelines/taskdefs/\(service).json", template)
        git.folder.write("repo/services/\(service)/Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n")
    }

    /// Commits a new version whose deploy will be `health` (healthy, failing, ...), its rollout taking `looks`
    /// DescribeServices; returns its SHA.
    func commit(_ version: String, health: String = "healthy", looks: Int = 2) throws -> String {
        let probe = grpc ? ".grpc(\"/\(service == "user-service" ? "user.UserService" : "svc.Service")/Check\")" : ".http(\"/health\")"
        git.folder.write(
            "repo/pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("deploy-test") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "staging-cluster")
                    .dns(zone: "staging.comyno.net")
                    .serviceName("\(ecsService)")
                    .variables(["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole", "LOCAL_HEALTH": "\(health)", "ROLLOUT_LOOKS": "\(looks)"])
                Service("\(service)", repository: "\(repository)", port: \(port), protocol: \(grpc ? ".grpc" : ".http"))
                    .healthCheck(\(probe))
                \(extraItems)
                Checkout()
                EachService {
                    BuildImage()
                    PushImage()
                    RegisterTaskDefinition()
                    UpdateService(pollInterval: .milliseconds(100))
                    HealthCheck(interval: .milliseconds(200), deadline: .seconds(5))
                }
            }
            """)
        git.folder.write("repo/services/\(service)/app.txt", "\(service) \(version)\n")
        _ = try git.git(["add", "."], in: "repo")
        _ = try git.git(["commit", "-qm", version], in: "repo")
        return try git.sha("HEAD", in: "repo")
    }

    var environment: [String: String] {
        aws.merging([
            "PIPELINE_HOME": home.url.path,
            "PIPELINE_CONNECT_TO": "\(service).staging.comyno.net:\(port):127.0.0.1:\(serverPort)",
        ]) { _, new in new }
    }

    /// `pipeline ARGS` in the repository.
    func pipeline(_ arguments: String...) async throws -> ProcessOutput {
        try await runProcess(Project.executable, arguments, in: repo, environment: environment)
    }

    /// `pipeline ARGS` in the repository, started and left running.
    func start(_ arguments: String...) throws -> Process {
        let process = Process()
        process.executableURL = Project.executable
        process.arguments = arguments
        process.currentDirectoryURL = repo
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until the log of `stage` in `run` has each of `texts` (up to 120 s), then `delay` seconds, then sends
    /// `signal` to `runner` and waits for it to exit; says whether the texts came. All on a thread of its own, so
    /// the signal follows the log within milliseconds: an await could resume only when the concurrency pool had a
    /// thread free, and under a full suite's load the run had moved on past the moment the test means to hit.
    func signal(_ runner: Process, _ signal: Int32, run: Int, stage: String, afterLogging texts: String..., delay: Double = 0) async -> Bool {
        let log = home.url.appending(path: "runs/\(run)/logs/\(stage).log")
        let seen = await onOwnThread { () -> Bool in
            let deadline = Date().addingTimeInterval(120)
            var seen = false
            while Date() < deadline {
                if let content = try? String(contentsOf: log, encoding: .utf8), texts.allSatisfy(content.contains) {
                    seen = true
                    break
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            if seen, delay > 0 { Thread.sleep(forTimeInterval: delay) }
            kill(runner.processIdentifier, signal)
            runner.waitUntilExit()
            return seen
        }
        return seen
    }

    /// The task definition ECS (moto) says the service runs.
    func live() async throws -> String {
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: aws))
        return try await client.describeService(cluster: "staging-cluster", service: ecsService).taskDefinition
    }

    /// The outputs a stage of a run published.
    func outputs(run: Int, stage: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(contentsOf: home.url.appending(path: "runs/\(run)/outputs/\(stage).json")))
    }
}
