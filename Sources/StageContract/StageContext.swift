import Foundation
import PipelineDSL

/// The variables the runner hands every stage process, shell or built-in (the README lists them for shell stages).
/// What a stage's exit status tells the runner beyond success (0) and failure (anything else).
public enum StageExit {
    /// The stage failed in a way another attempt cannot change (an immutable tag taken by another image, a
    /// refusal): the runner does not retry it, whatever its retries allow. Shell stages may exit with it too.
    public static let permanentFailure: Int32 = 65
}

public enum StageVariables {
    public static let runID = "PIPELINE_RUN_ID"
    public static let environment = "PIPELINE_ENV"
    public static let user = "PIPELINE_RUN_USER"
    public static let sha = "PIPELINE_SHA"
    public static let ref = "PIPELINE_REF"
    public static let stage = "PIPELINE_STAGE"
    public static let service = "PIPELINE_SERVICE"
    public static let attempt = "PIPELINE_ATTEMPT"
    public static let runFolder = "PIPELINE_RUN_DIR"
    public static let workspace = "PIPELINE_WORKSPACE"
    public static let outputs = "PIPELINE_OUTPUTS"
    public static let artifacts = "PIPELINE_ARTIFACTS"
    /// `rollback` (the default) or `leave`: what a deploy stage does with the service when the run is cancelled.
    public static let onCancel = "PIPELINE_ON_CANCEL"
    /// The commit's time (seconds since 1970), so that a rebuild of one commit makes the same image.
    public static let commitTime = "PIPELINE_COMMIT_TIME"
    /// `1` (`pipeline run --rebuild`): build every image, even one whose build key the registry already has.
    public static let rebuild = "PIPELINE_REBUILD"
    /// In an environment that deploys only what another verified: a JSON object from each service to the image
    /// digest the other environment verified for what this commit builds (the build stage takes exactly that).
    public static let verifiedImages = "PIPELINE_VERIFIED_IMAGES"
    /// The repository the run's commit comes from, and the folder of the runner's mirrors of it.
    public static let source = "PIPELINE_SOURCE"
    public static let gitCache = "PIPELINE_GIT_CACHE"
    /// The run's and the attempt's markers, by which the runner finds every process of a run (see StrayProcesses).
    public static let runMarker = "PIPELINE_RUN_MARKER"
    public static let stageMarker = "PIPELINE_STAGE_MARKER"
    /// The prefix of the earlier stages' outputs.
    public static let outputPrefix = "PIPELINE_OUTPUT_"

    /// Every variable the runner sets for a stage: a stage's own `.env` and `.secret` may not take these names.
    public static let all: Set<String> = Set(
        [runID, environment, user, sha, ref, stage, service, attempt, runFolder, workspace, outputs, artifacts, onCancel,
         commitTime, rebuild, verifiedImages, source, gitCache, runMarker, stageMarker])

    /// Whether `name` is a variable the runner sets (or an earlier stage's output).
    public static func isReserved(_ name: String) -> Bool {
        all.contains(name) || name.hasPrefix(outputPrefix)
    }

    /// What the run tells stage `stage` on attempt `attempt`: the values above, and every earlier stage's outputs
    /// as `PIPELINE_OUTPUT_<STAGE>_<KEY>`.
    public static func values(
        run: RunIdentity, stage: Stage, attempt: Int, folder: RunFolder, outputs: [String: [String: String]]
    ) throws -> [String: String] {
        var env: [String: String] = [:]
        var source: [String: String] = [:]  // variable → "stage 'S' key 'K'", to name a collision
        for (stageID, values) in outputs.sorted(by: { $0.key < $1.key }) {
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                let name = StageOutputs.variableName(stage: stageID, key: key)
                let here = "stage '\(stageID)' output '\(NameRules.shown(key))'"
                if let earlier = source[name] {
                    throw StageContextError(
                        "\(earlier) and \(here) would both be \(name); rename one of the outputs (or a stage)")
                }
                source[name] = here
                env[name] = value
            }
        }
        env[runID] = String(run.runID)
        env[environment] = run.environment
        env[user] = run.user
        env[sha] = run.sha ?? ""
        env[ref] = run.ref ?? ""
        env[self.stage] = stage.id
        env[service] = stage.service ?? ""
        env[self.attempt] = String(attempt)
        env[runFolder] = folder.root.path
        env[workspace] = folder.workspace.path
        env[self.outputs] = folder.outputsFile(stage.id).path
        env[artifacts] = folder.artifacts(stage.id).path
        return env
    }
}

/// Who a run is: what every stage of it is told alike.
public struct RunIdentity: Sendable, Equatable {
    /// The run's number.
    public let runID: Int
    /// The environment's name.
    public let environment: String
    /// Who started it.
    public let user: String
    /// The commit it deploys, when known.
    public let sha: String?
    /// The ref asked for.
    public let ref: String?

    public init(runID: Int, environment: String, user: String, sha: String?, ref: String?) {
        self.runID = runID
        self.environment = environment
        self.user = user
        self.sha = sha
        self.ref = ref
    }

    /// The run-time placeholders' values for this run.
    public var placeholders: RunPlaceholders { RunPlaceholders(environment: environment, sha: sha, run: runID, user: user) }
}

/// Everything a built-in stage process is told, decoded once when it starts (`StageContext.decode`).
public struct StageContext: Sendable {
    /// The run.
    public let run: RunIdentity
    /// The stage, as the run's plan has it.
    public let stage: Stage
    /// The plan the run runs.
    public let plan: Plan
    /// Which attempt of the stage this is (1 first).
    public let attempt: Int
    /// The run's folder.
    public let folder: RunFolder
    /// What to do with a changed service when the run is cancelled.
    public let onCancel: CancelPolicy
    /// The commit's time, when the runner knows it.
    public let commitTime: Int?
    /// Whether images are built even when the registry has one of their build key (`pipeline run --rebuild`).
    public let rebuild: Bool
    /// Per service, the image digest the environment this one promotes from verified (see `verifiedImages`).
    public let verifiedImages: [String: String]
    /// Where the commit comes from (the repository's URL and the runner's mirror cache), when the run has a source.
    public let source: (url: String, cache: URL)?
    /// The process's whole environment: AWS credentials, registry settings and the stage's own variables and
    /// secrets are read from it by the parts that need them.
    public let processEnvironment: [String: String]
    /// The outputs file this stage writes.
    public let outputs: StageOutputFile

    /// What to do with a changed service when the run is cancelled.
    public enum CancelPolicy: String, Sendable { case rollback, leave }

    /// The stage's id.
    public var stageID: String { stage.id }
    /// The stage's service, for service stages.
    public var service: String? { stage.service }
    /// This stage's artifacts folder.
    public var artifacts: URL { folder.artifacts(stage.id) }
    /// The stages' working folder.
    public var workspace: URL { folder.workspace }

    public init(
        run: RunIdentity, stage: Stage, plan: Plan, attempt: Int, folder: RunFolder, onCancel: CancelPolicy = .rollback,
        commitTime: Int? = nil, rebuild: Bool = false, verifiedImages: [String: String] = [:], source: (url: String, cache: URL)? = nil, processEnvironment: [String: String],
        outputs: StageOutputFile
    ) {
        self.rebuild = rebuild
        self.verifiedImages = verifiedImages
        self.source = source
        self.run = run
        self.stage = stage
        self.plan = plan
        self.attempt = attempt
        self.folder = folder
        self.onCancel = onCancel
        self.commitTime = commitTime
        self.processEnvironment = processEnvironment
        self.outputs = outputs
    }

    /// The context of stage `stageID` of the run in `runFolder`, from the variables the runner set in `environment`.
    /// Throws naming the first missing or malformed value, and what to do.
    public static func decode(runFolder: URL, stage stageID: String, environment: [String: String]) throws(StageContextError) -> StageContext {
        let folder = RunFolder(root: runFolder)
        let plan: Plan
        do {
            plan = try folder.readPlan()
        } catch {
            throw StageContextError("cannot read the run's plan \(folder.planFile.path): \(describeFileError(error)); built-in stages run in a run folder `pipeline run` made")
        }
        guard let stage = plan.stages.first(where: { $0.id == stageID }) else {
            throw StageContextError("the plan of \(runFolder.path) has no stage '\(stageID)'")
        }
        func required(_ name: String) throws(StageContextError) -> String {
            guard let value = environment[name] else {
                throw StageContextError("\(name) is not set: built-in stages are started by `pipeline run`, which sets it")
            }
            return value
        }
        func number(_ name: String, atLeast minimum: Int) throws(StageContextError) -> Int {
            let text = try required(name)
            guard let value = Int(text), value >= minimum else {
                throw StageContextError("\(name) is '\(text)', not a whole number of at least \(minimum)")
            }
            return value
        }
        let run = RunIdentity(
            runID: try number(StageVariables.runID, atLeast: 1), environment: try required(StageVariables.environment),
            user: environment[StageVariables.user] ?? "", sha: environment[StageVariables.sha].flatMap { $0.isEmpty ? nil : $0 },
            ref: environment[StageVariables.ref].flatMap { $0.isEmpty ? nil : $0 })
        guard run.environment == plan.environment.name else {
            throw StageContextError("\(StageVariables.environment) is '\(run.environment)' but the run's plan is of '\(plan.environment.name)'")
        }
        if let sha = run.sha, !(sha.utf8.count == 40 && sha.isASCIIHex) {
            throw StageContextError("\(StageVariables.sha) is '\(sha)', not a 40-character commit SHA")
        }
        let attempt = try number(StageVariables.attempt, atLeast: 1)
        let onCancel: CancelPolicy
        switch environment[StageVariables.onCancel] {
        case nil, "": onCancel = .rollback
        case let value?:
            guard let policy = CancelPolicy(rawValue: value) else {
                throw StageContextError("\(StageVariables.onCancel) is '\(value)', not rollback or leave")
            }
            onCancel = policy
        }
        let commitTime: Int?
        switch environment[StageVariables.commitTime] {
        case nil, "": commitTime = nil
        case let text?:
            guard let value = Int(text) else { throw StageContextError("\(StageVariables.commitTime) is '\(text)', not seconds since 1970") }
            commitTime = value
        }
        let rebuild: Bool
        switch environment[StageVariables.rebuild] {
        case nil, "", "0": rebuild = false
        case "1": rebuild = true
        case let text?: throw StageContextError("\(StageVariables.rebuild) is '\(text)', not 1 or 0")
        }
        var verifiedImages: [String: String] = [:]
        if let text = environment[StageVariables.verifiedImages], !text.isEmpty {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
                throw StageContextError("\(StageVariables.verifiedImages) is not a JSON object of service names to image digests")
            }
            verifiedImages = decoded
        }
        var source: (url: String, cache: URL)?
        if let url = environment[StageVariables.source], !url.isEmpty {
            guard let cache = environment[StageVariables.gitCache], !cache.isEmpty else {
                throw StageContextError("\(StageVariables.source) is set but \(StageVariables.gitCache) is not: the runner sets both")
            }
            source = (url, URL(filePath: cache))
        }
        let outputsPath = environment[StageVariables.outputs] ?? folder.outputsFile(stageID).path
        return StageContext(
            run: run, stage: stage, plan: plan, attempt: attempt, folder: folder, onCancel: onCancel, commitTime: commitTime,
            rebuild: rebuild, verifiedImages: verifiedImages, source: source, processEnvironment: environment, outputs: StageOutputFile(path: outputsPath))
    }

    /// The outputs stage `id` of this run handed on (nil: it has not succeeded, or wrote none).
    public func outputs(of id: String) throws -> [String: String]? {
        try folder.handedOnOutputs(of: id)
    }

    /// The typed outputs of earlier stage `id`; throws saying which stage left which value missing or malformed.
    public func output<Output: StageOutput>(_ type: Output.Type, of id: String) throws -> Output {
        guard let values = try outputs(of: id) else {
            throw StageContextError("stage '\(id)' left no outputs: it has not succeeded in this run")
        }
        do {
            return try FlatValues.decode(Output.self, from: values)
        } catch {
            throw StageContextError("stage '\(id)' left \(FlatValues.describe(error))")
        }
    }

    /// The typed outputs of earlier stage `id`, or nil when it published none (it has not succeeded).
    public func outputIfPresent<Output: StageOutput>(_ type: Output.Type, of id: String) throws -> Output? {
        try outputs(of: id) == nil ? nil : output(type, of: id)
    }

    /// `text` with the run-time placeholders filled in; throws naming one the run has no value for.
    public func fill(_ text: String, field: String) throws -> String {
        try run.placeholders.fill(text, field: field)
    }
}

/// A built-in stage that cannot start: what was missing or malformed.
public struct StageContextError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
