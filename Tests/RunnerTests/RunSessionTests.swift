import Foundation
import PipelineDSL
import Runner
import StageContract
import Synchronization
import Testing
import TestSupport

/// What a console hears, kept for the assertions.
final class RecordingConsole: RunConsole {
    let lines = Mutex<[String]>([])
    func runStarted(id: Int, environment: String, stages: Int) { lines.withLock { $0.append("started \(id) \(stages)") } }
    func note(_ message: String) { lines.withLock { $0.append("note \(message)") } }
    func stageStarted(_ stage: String, attempt: Int) { lines.withLock { $0.append("▶ \(stage) \(attempt)") } }
    func stageFinished(_ stage: String, status: StageStatus, attempt: Int, seconds: Double, message: String?) {
        lines.withLock { $0.append("\(stage) \(status.rawValue) \(attempt)") }
    }
    func runFinished(id: Int, status: RunStatus, summary: [StageSummary], seconds: Double) {
        lines.withLock { $0.append("finished \(id) \(status.rawValue)") }
    }
    func stageOutput(stage: String, lines text: UnsafeRawBufferPointer) {
        let said = String(decoding: text, as: UTF8.self)
        lines.withLock { $0.append("[\(stage)] \(said)") }
    }
}

private let sha = "89abcdef0123456789abcdef0123456789abcdef"

private func shell(_ id: String, _ command: String, after: [String] = [], service: String? = nil, retry: RetryPolicy? = nil) -> Stage {
    Stage(id: id, service: service, dependsOn: after, retry: retry, spec: .shell(ShellSpec(command: command)))
}

/// A run executed in this process (the session, the executor, the launcher and the recorder), with shell stages as
/// its processes: what the binary does, without the binary.
@Suite struct RunSessionTests {
    let home = TemporaryDirectory()

    func run(_ stages: [Stage], secrets: [String: [String: String]] = [:]) throws -> (StateStore, RunRecord, RunStatus, RecordingConsole) {
        let store = try StateStore(home: home.url)
        let console = RecordingConsole()
        let plan = Plan(
            pipeline: "p", source: Source(), parallelism: 2,
            environment: EnvironmentSpec(name: "staging", branch: "main", region: "us-east-1", cluster: "c"), services: [],
            notifications: [], stages: stages)
        let (record, status) = try RunSession(store: store, console: console).execute(
            plan: plan,
            request: .init(environment: "staging", sha: sha, ref: "main", branch: "main", trigger: "test", user: "alice", noWait: true),
            options: RunOptions(parallelism: 2, killGrace: 2), executable: "/bin/false", secrets: secrets,
            environment: ["PATH": "/usr/bin:/bin"])
        return (store, record, status, console)
    }

    @Test func outputsFlowAlongTheChainUnderTheContractsNames() throws {
        let (store, record, status, console) = try run([
            shell("make.it-1", #"printf 'key=v1\nlong<<END\nline 1\nline 2\nEND\n' > "$PIPELINE_OUTPUTS""#),
            shell("use", #"echo "seen=$PIPELINE_OUTPUT_MAKE_IT_1_KEY/$PIPELINE_ATTEMPT/$PIPELINE_SHA/$PIPELINE_STAGE" > "$PIPELINE_OUTPUTS""#, after: ["make.it-1"]),
        ])
        #expect(status == .succeeded, "\(console.lines.withLock { $0 })")
        let folder = RunFolder(root: store.runFolder(record.id))
        #expect(try folder.publishedOutputs(of: "make.it-1") == ["key": "v1", "long": "line 1\nline 2"])
        #expect(try folder.publishedOutputs(of: "use") == ["seen": "v1/1/\(sha)/use"])
        #expect(try store.stageRuns(record.id).map(\.status) == [.succeeded, .succeeded])
    }

    /// Only the built-in stages that change a service claim deployments: a shell stage's file in claims/ records
    /// nothing; and what an earlier attempt left there is gone before the next attempt starts.
    @Test func aShellStagesClaimIsNotRecordedAndAnEarlierAttemptsClaimIsRemoved() throws {
        let claim = #"{"kind":"deploy","service":"api","sha":"\#(sha)","taskDefinitionArn":"arn:td:2"}"#
        let command = """
            if [ "$PIPELINE_ATTEMPT" = 1 ]; then echo '\(claim)' > "$PIPELINE_RUN_DIR/claims/$PIPELINE_STAGE.json"; exit 1; fi
            test ! -e "$PIPELINE_RUN_DIR/claims/$PIPELINE_STAGE.json" || exit 3
            echo '\(claim)' > "$PIPELINE_RUN_DIR/claims/$PIPELINE_STAGE.json"
            """
        let (store, _, status, console) = try run([shell("api.deploy", command, service: "api", retry: RetryPolicy(attempts: 1, backoffSeconds: 0))])
        #expect(status == .succeeded, "\(console.lines.withLock { $0 })")
        #expect(try store.deployments(service: "api", environment: "staging").isEmpty)
    }

    /// A secret a stage writes into its outputs or its claim is masked on disk before anything reads it.
    @Test func secretsAreMaskedInOutputsAndClaims() throws {
        let command = #"""
            echo "token=$TOKEN" > "$PIPELINE_OUTPUTS"
            echo "{\"kind\":\"deploy\",\"service\":\"api\",\"taskDefinitionArn\":\"arn:$TOKEN\"}" > "$PIPELINE_RUN_DIR/claims/$PIPELINE_STAGE.json"
            """#
        let (store, record, status, _) = try run([shell("leak", command, service: "api")], secrets: ["leak": ["TOKEN": "hunter2-secret"]])
        #expect(status == .succeeded)
        let folder = RunFolder(root: store.runFolder(record.id))
        let published = try #require(try folder.publishedOutputs(of: "leak"))
        #expect(published["token"].map { !$0.contains("hunter2") } == true, "\(published)")
        let claim = try String(contentsOf: folder.claimFile("leak"), encoding: .utf8)
        #expect(!claim.contains("hunter2"), "\(claim)")
        #expect(try store.deployments(service: "api", environment: "staging").allSatisfy { !($0.taskDefinitionArn ?? "").contains("hunter2") })
    }
}
