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

    /// Who started a run is fixed when it is created: a runner that resumes it (another person's) does not become
    /// the requester at its gate, so the one who started it still may not approve it (found by the adversarial pass:
    /// alice started, bob resumed, alice approved her own run).
    @Test func theRequesterAtAGateIsWhoStartedTheRunNotWhoResumedIt() throws {
        let store = try StateStore(home: home.url)
        let flag = home.url.appending(path: "go").path
        let plan = Plan(
            pipeline: "p", source: Source(), parallelism: 1,
            environment: EnvironmentSpec(name: "staging", branch: "main", region: "us-east-1", cluster: "c"), services: [],
            notifications: [],
            stages: [
                shell("before", "test -f \(flag)"),
                Stage(id: "gate", dependsOn: ["before"], spec: .approval(ApprovalSpec(approvers: ["alice", "bob"], identityVariable: "APPROVER"))),
            ])
        let request = RunSession.Request(environment: "staging", sha: sha, ref: "main", branch: "main", trigger: "test", user: "ops", noWait: true)
        let (first, failed) = try RunSession(store: store, console: RecordingConsole()).execute(
            plan: plan, request: request, options: RunOptions(parallelism: 1, killGrace: 2), executable: "/bin/false", secrets: [:],
            environment: ["PATH": "/usr/bin:/bin", "APPROVER": "alice"])
        #expect(failed == .failed)
        #expect(FileManager.default.createFile(atPath: flag, contents: nil))
        let lease = try store.takeOwnership(of: first.id, accepting: [.failed], why: "resume")
        let (_, waiting) = try RunSession(store: store, console: RecordingConsole()).execute(
            plan: plan, request: request, options: RunOptions(parallelism: 1, killGrace: 2), executable: "/bin/false", secrets: [:],
            environment: ["PATH": "/usr/bin:/bin", "APPROVER": "bob"], resuming: lease)
        #expect(waiting == .waiting)
        let record = try #require(try store.run(first.id))
        let gate = try #require(try WaitingGate.of(record, store: store))
        #expect(gate.requester == "alice")
        #expect(gate.refusal(of: "alice", to: .approve)?.description == "alice started run \(first.id) and may not approve it; bob must")
        #expect(gate.refusal(of: "bob", to: .approve) == nil && gate.refusal(of: "alice", to: .reject) == nil)
        #expect(gate.refusal(of: "mallory", to: .reject)?.description == "mallory may not decide on gate of run \(first.id); its approvers are alice, bob")
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

    /// An output whose key holds a secret's value is not published, nor handed on as a variable whose name would
    /// carry the secret (upper-cased, out of the masker's reach); the stage's log says so.
    @Test func anOutputKeyHoldingASecretIsDropped() throws {
        let (store, record, status, _) = try run(
            [shell("a", #"echo "${TOKEN}=v" >> "$PIPELINE_OUTPUTS"; echo ok=1 >> "$PIPELINE_OUTPUTS""#),
             shell("b", #"env | grep PIPELINE_OUTPUT_A_ > "$PIPELINE_ARTIFACTS/seen""#, after: ["a"])],
            secrets: ["a": ["TOKEN": "tok3nsecretvalue"]])
        #expect(status == .succeeded)
        let folder = RunFolder(root: store.runFolder(record.id))
        #expect(try folder.publishedOutputs(of: "a") == ["ok": "1"])
        let seen = try String(contentsOf: folder.artifacts("b").appending(path: "seen"), encoding: .utf8)
        #expect(seen == "PIPELINE_OUTPUT_A_OK=1\n", "\(seen)")
        let log = try String(contentsOf: folder.log("a"), encoding: .utf8)
        #expect(log.contains("warning: the output key '***' holds a secret's value: it is not published") && !log.contains("tok3nsecretvalue"))
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

/// The built-in stages' side of the contract, with a script standing in for `pipeline __stage` (it is started as
/// the built-in stages are: `EXECUTABLE __stage RUN_FOLDER STAGE`): what the runner does with their outputs and
/// their deployment claims.
@Suite struct BuiltinStageContractTests {
    let home = TemporaryDirectory()

    /// A run of `stages`, the built-in ones running `script` (sh, with $2 the run folder and $3 the stage id).
    func run(_ stages: [Stage], script: String, secrets: [String: [String: String]] = [:]) throws -> (StateStore, RunRecord, RunStatus) {
        // Written through a close-on-exec descriptor: a process another test starts meanwhile must not inherit it
        // open for writing, or executing the script fails with ETXTBSY.
        let executable = home.url.appending(path: "builtin-\(UUID().uuidString).sh")
        let fd = open(executable.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        #expect(fd >= 0)
        let text = Array("#!/bin/sh\n\(script)\n".utf8)
        #expect(write(fd, text, text.count) == text.count)
        close(fd)
        let store = try StateStore(home: home.url)
        let plan = Plan(
            pipeline: "p", source: Source(), parallelism: 2,
            environment: EnvironmentSpec(name: "staging", branch: "main", region: "us-east-1", cluster: "c"),
            services: [], notifications: [], stages: stages)
        let (record, status) = try RunSession(store: store, console: RecordingConsole()).execute(
            plan: plan,
            request: .init(environment: "staging", sha: sha, ref: "main", branch: "main", trigger: "test", user: "alice", noWait: true),
            options: RunOptions(parallelism: 2, killGrace: 2), executable: executable.path, secrets: secrets,
            // The script stands in for `pipeline __stage`, not for the stage server that forks stages in its stead.
            environment: ["PATH": "/usr/bin:/bin", "PIPELINE_STAGE_SERVER": "off"])
        return (store, record, status)
    }

    let deploy = Stage(id: "api.deploy", service: "api", spec: .updateService(UpdateServiceSpec(service: "api", cluster: "c", ecsService: "api", registerStage: nil)))
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7"

    func claim(_ fields: String) -> String {
        "printf '%s' '{\"kind\":\"deploy\",\"service\":\"api\",\"sha\":\"\(sha)\",\"taskDefinitionArn\":\"\(arn)\"\(fields)}' > \"$2/claims/$3.json\""
    }

    /// A secret in a claim, even written with JSON escapes (`\u0068` for `h`), is masked in what is recorded.
    @Test func anEscapedSecretInAClaimIsMaskedInTheRecord() throws {
        let escaped = #"\u0068unter2-secret"#
        let (store, record, status) = try run(
            [deploy], script: claim(#","image":"repo:\#(escaped)","taskDefinition":"{\"env\":\"\#(escaped)\"}""#),
            secrets: ["api.deploy": ["TOKEN": "hunter2-secret"]])
        #expect(status == .succeeded)
        let recorded = try #require(try store.deployments(service: "api", environment: "staging").first)
        #expect(recorded.taskDefinitionArn == arn)
        #expect(recorded.image == "repo:***" && recorded.taskDefinition == #"{"env":"***"}"#, "\(recorded)")
        let file = try String(contentsOf: RunFolder(root: store.runFolder(record.id)).claimFile("api.deploy"), encoding: .utf8)
        #expect(!file.contains("hunter2") && !file.contains("u0068"), "\(file)")
    }

    /// A claim that is not one, or not of this run, fails its stage (exit 1, saying why) and records nothing;
    /// before, a malformed claim stopped the run as a recording failure (74).
    @Test(arguments: [
        ("printf '{not json' > \"$2/claims/$3.json\"", "is not a claim"),
        ("printf '%s' '{\"kind\":\"deploy\",\"service\":\"api\",\"sha\":\"\(String(repeating: "1", count: 40))\",\"taskDefinitionArn\":\"arn:aws:ecs:us-east-1:123456789012:task-definition/api:7\"}' > \"$2/claims/$3.json\"", "in a run of \(sha)"),
        ("printf '%s' '{\"kind\":\"deploy\",\"service\":\"web\",\"sha\":\"\(sha)\",\"taskDefinitionArn\":\"arn:aws:ecs:us-east-1:123456789012:task-definition/api:7\"}' > \"$2/claims/$3.json\"", "not the stage's 'api'"),
        ("printf '%s' '{\"kind\":\"deploy\",\"service\":\"api\",\"sha\":\"\(sha)\",\"taskDefinitionArn\":\"arn:td:2\"}' > \"$2/claims/$3.json\"", "is not a task-definition ARN"),
        ("head -c 1100000 /dev/zero | tr '\\\\0' ' ' > \"$2/claims/$3.json\"", "is larger than 1048576 bytes"),
    ])
    func aClaimThatIsNotOneFailsItsStage(script: String, reason: String) throws {
        let (store, record, status) = try run([deploy], script: script)
        #expect(status == .failed)
        let stage = try #require(try store.stageRuns(record.id).first)
        #expect(stage.status == .failed && stage.exitCode == 0, "\(stage)")
        #expect(stage.message?.contains("its deployment claim is refused") == true || stage.message?.contains("deployment claim of stage") == true, "\(stage.message ?? "")")
        #expect(stage.message?.contains(reason) == true, "\(stage.message ?? "")")
        #expect(try store.deployments(service: "api", environment: "staging").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: RunFolder(root: store.runFolder(record.id)).claimFile("api.deploy").path))
    }

    /// A built-in stage's outputs (what AWS answered) reach the stages after it as written, even when a secret's
    /// value is part of them; people see them masked.
    @Test func builtinOutputsAreHandedOnAsWrittenAndShownMasked() throws {
        let check = #"[ "$PIPELINE_OUTPUT_API_DEPLOY_TASKDEFINITIONARN" = "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7" ] && echo same=yes > "$PIPELINE_OUTPUTS""#
        let (store, record, status) = try run(
            [deploy, Stage(id: "after", dependsOn: ["api.deploy"], spec: .shell(ShellSpec(command: check)))],
            script: "echo taskDefinitionArn=\(arn) > \"$2/outputs/$3.env\"",
            secrets: ["after": ["ACCOUNT": "123456789012"]])
        #expect(status == .succeeded)
        let folder = RunFolder(root: store.runFolder(record.id))
        #expect(try folder.publishedOutputs(of: "api.deploy") == ["taskDefinitionArn": "arn:aws:ecs:us-east-1:***:task-definition/api:7"])
        #expect(try folder.publishedOutputs(of: "after") == ["same": "yes"])
    }

    /// Two outputs that would be the same variable (`a` + `B_C`, `a_b` + `C`) are refused by the stage that would see
    /// them, naming both, instead of one silently winning.
    @Test func outputsThatWouldShareAVariableAreRefused() throws {
        let (store, record, status) = try run([
            Stage(id: "a", spec: .shell(ShellSpec(command: #"echo B_C=1 > "$PIPELINE_OUTPUTS""#))),
            Stage(id: "a_b", spec: .shell(ShellSpec(command: #"echo C=2 > "$PIPELINE_OUTPUTS""#))),
            Stage(id: "use", dependsOn: ["a", "a_b"], spec: .shell(ShellSpec(command: "true"))),
        ], script: "true")
        #expect(status == .failed)
        let use = try #require(try store.stageRuns(record.id).first { $0.stageID == "use" })
        #expect(use.message?.contains("stage 'a' output 'B_C' and stage 'a_b' output 'C' would both be PIPELINE_OUTPUT_A_B_C") == true, "\(use.message ?? "")")
    }
}
