import Foundation
import PipelineDSL
import StageContract
import Testing
import TestSupport

private let environment = EnvironmentSpec(name: "staging", branch: "main", region: "us-east-1", cluster: "c")
private let sha = "0123456789abcdef0123456789abcdef01234567"

/// A run folder with a plan of two stages, the first of which published `outputs`.
private func runFolder(outputs: [String: String]? = nil, firstID: String = "api.push") throws -> (TemporaryDirectory, RunFolder, Plan) {
    let directory = TemporaryDirectory()
    let folder = RunFolder(root: directory.url.appending(path: "runs/7"))
    let plan = Plan(
        pipeline: "p", source: Source(), parallelism: 1, environment: environment, services: [], notifications: [],
        stages: [
            Stage(id: firstID, spec: .shell(ShellSpec(command: "true"))),
            Stage(id: "api.register", dependsOn: [firstID], spec: .shell(ShellSpec(command: "true"))),
        ])
    try folder.create(plan: plan)
    if let outputs {
        try JSONEncoder().encode(outputs).write(to: folder.publishedOutputsFile(firstID))
    }
    return (directory, folder, plan)
}

@Suite struct StageContextTests {
    /// What the runner sets is what the stage decodes: one definition of the variables on both sides.
    @Test func theVariablesTheRunnerSetsDecodeIntoTheSameContext() throws {
        let (directory, folder, plan) = try runFolder(outputs: ["image": "repo@sha256:ab", "digest": "sha256:ab"])
        let run = RunIdentity(runID: 7, environment: "staging", user: "alice", sha: sha, ref: "main")
        var outputs: [String: [String: String]] = [:]
        for stage in plan.stages { outputs[stage.id] = try folder.handedOnOutputs(of: stage.id) }
        var variables = try StageVariables.values(run: run, stage: plan.stages[1], attempt: 2, folder: folder, outputs: outputs)
        #expect(variables["PIPELINE_OUTPUT_API_PUSH_IMAGE"] == "repo@sha256:ab")
        variables[StageVariables.onCancel] = "leave"
        let context = try StageContext.decode(runFolder: folder.root, stage: "api.register", environment: variables)
        #expect(context.run == run)
        #expect(context.attempt == 2)
        #expect(context.onCancel == .leave)
        #expect(context.stage == plan.stages[1])
        #expect(context.artifacts == folder.artifacts("api.register"))
        #expect(try context.output(PushOutput.self, of: "api.push") == PushOutput(image: "repo@sha256:ab", digest: "sha256:ab", tags: nil, registry: nil))
        withExtendedLifetime(directory) {}
    }

    @Test func aMissingOrMalformedValueIsNamed() throws {
        let (directory, folder, plan) = try runFolder()
        let run = RunIdentity(runID: 7, environment: "staging", user: "alice", sha: sha, ref: nil)
        let good = try StageVariables.values(run: run, stage: plan.stages[0], attempt: 1, folder: folder, outputs: [:])
        func error(_ change: (inout [String: String]) -> Void, stage: String = "api.push") -> String {
            var variables = good
            change(&variables)
            do {
                _ = try StageContext.decode(runFolder: folder.root, stage: stage, environment: variables)
                return "decoded"
            } catch {
                return error.description
            }
        }
        #expect(error { $0["PIPELINE_RUN_ID"] = nil } == "PIPELINE_RUN_ID is not set: built-in stages are started by `pipeline run`, which sets it")
        #expect(error { $0["PIPELINE_ATTEMPT"] = "two" } == "PIPELINE_ATTEMPT is 'two', not a whole number of at least 1")
        #expect(error { $0["PIPELINE_SHA"] = "abc" } == "PIPELINE_SHA is 'abc', not a 40-character commit SHA")
        #expect(error { $0["PIPELINE_ENV"] = "prod" } == "PIPELINE_ENV is 'prod' but the run's plan is of 'staging'")
        #expect(error { $0["PIPELINE_ON_CANCEL"] = "shrug" } == "PIPELINE_ON_CANCEL is 'shrug', not rollback or leave")
        #expect(error({ _ in }, stage: "nope") == "the plan of \(folder.root.path) has no stage 'nope'")
        // Character.isHexDigit takes full-width digits; git does not.
        let fullWidth = String(repeating: "\u{FF10}", count: 40)
        #expect(error { $0["PIPELINE_SHA"] = fullWidth } == "PIPELINE_SHA is '\(fullWidth)', not a 40-character commit SHA")
        #expect(error { _ in } == "decoded")
        #expect(error { _ in try? FileManager.default.removeItem(at: folder.planFile) }.hasPrefix(
            "cannot read the run's plan \(folder.planFile.path): No such file or directory; built-in stages run in a run folder"))
        withExtendedLifetime(directory) {}
    }

    @Test func anEarlierStagesMissingOutputSaysWhichStageAndKey() throws {
        let (directory, folder, plan) = try runFolder(outputs: ["image": "repo@sha256:ab"])
        let run = RunIdentity(runID: 7, environment: "staging", user: "alice", sha: sha, ref: nil)
        let context = try StageContext.decode(
            runFolder: folder.root, stage: "api.register",
            environment: try StageVariables.values(run: run, stage: plan.stages[1], attempt: 1, folder: folder, outputs: [:]))
        #expect(throws: StageContextError("stage 'api.push' left no 'digest' output")) { try context.output(PushOutput.self, of: "api.push") }
        #expect(throws: StageContextError("stage 'api.register' left no outputs: it has not succeeded in this run")) {
            try context.output(RegisterOutput.self, of: "api.register")
        }
        withExtendedLifetime(directory) {}
    }

    /// The run folder's one mapping from ids to files: what the runner publishes under an id is what a stage reads
    /// under it, whatever the id (a plan written by hand is not validated).
    @Test func outputsAreFoundUnderTheIdTheyWerePublishedFor() throws {
        let (directory, folder, _) = try runFolder(outputs: ["image": "i", "digest": "d"], firstID: "push me:now")
        #expect(folder.publishedOutputsFile("push me:now").lastPathComponent == "push_me_now.json")
        #expect(try folder.publishedOutputs(of: "push me:now") == ["image": "i", "digest": "d"])
        #expect(RunFolder.fileName("..") == "_" && RunFolder.fileName("../x") == ".._x" && RunFolder.fileName("a.b-c_d") == "a.b-c_d")
        withExtendedLifetime(directory) {}
    }

    @Test func runTimePlaceholdersMeanTheSameEverywhere() throws {
        let placeholders = RunPlaceholders(environment: "staging", sha: sha, run: 12, user: "bob")
        #expect(try placeholders.fill("{sha}-{shortSha}-{env}-{run}-{user}-{var.X}", field: "tag")
            == "\(sha)-0123456789ab-staging-12-bob-{var.X}")
        let noCommit = RunPlaceholders(environment: "staging", sha: nil, run: 12, user: "bob")
        #expect(throws: StageContextError("the tag '{shortSha}' needs {shortSha}, which this run has no value for (it has no commit SHA)")) {
            try noCommit.fill("{shortSha}", field: "the tag")
        }
        #expect(noCommit.fill("deployed {sha} ({shortSha})", fallback: ["sha": "no commit", "shortSha": "no commit"]) == "deployed no commit (no commit)")
        #expect(RunPlaceholders.names.isSuperset(of: ["sha", "shortSha", "run", "user"]))
    }
}
