import Foundation
import PipelineDSL
import StageContract
import Synchronization

/// What every stage of a run shares.
public struct RunContext: Sendable {
    /// The run's number.
    public let runID: Int
    /// The environment.
    public let environment: String
    /// The commit being deployed, when known.
    public let sha: String?
    /// The ref asked for.
    public let ref: String?
    /// The branch being deployed (for conditions), when known.
    public let branch: String?
    /// The run's marker, carried by every stage process.
    public let marker: String
    /// Who started the run.
    public let user: String

    /// A context.
    public init(runID: Int, environment: String, sha: String?, ref: String?, branch: String?, marker: String, user: String = "") {
        self.user = user
        self.runID = runID
        self.environment = environment
        self.sha = sha
        self.ref = ref
        self.branch = branch
        self.marker = marker
    }
}

/// Starts stage processes: shell stages run their command; built-in stages run the `pipeline` executable
/// itself (`pipeline __stage RUN_FOLDER STAGE`) on the stage's spec in the run folder.
public struct StageLauncher: Sendable {
    /// The run's shared context.
    public let context: RunContext
    /// The `pipeline` executable, for built-in stages.
    public let executable: String
    /// The runner's own environment, which stages inherit.
    public let environment: [String: String]
    /// Resolved secrets per stage id, by variable name.
    public let secrets: [String: [String: String]]
    /// The outputs the run's stages hand on, read once each.
    let handedOn = HandedOnOutputs()
    /// The run's stage server, started at the first built-in stage.
    private let server = StageServerSlot()

    /// A launcher.
    public init(context: RunContext, executable: String, environment: [String: String], secrets: [String: [String: String]]) {
        self.context = context
        self.executable = executable
        self.environment = environment
        self.secrets = secrets
    }

    /// A started attempt.
    struct Launch {
        let process: StageProcess
        let stdout: Int32
        let stderr: Int32
        let stageMarker: String
    }

    /// The environment a stage attempt gets: the runner's own, the contract's variables (`StageVariables`), the
    /// stage's own variables, then its secrets.
    public func environment(for stage: Stage, attempt: Int, folder: RunFolder, plan: Plan) throws -> [String: String] {
        var env = environment
        let run = RunIdentity(runID: context.runID, environment: context.environment, user: context.user, sha: context.sha, ref: context.ref)
        env.merge(try StageVariables.values(run: run, stage: stage, attempt: attempt, folder: folder, outputs: try handedOn.all(of: plan.stages, in: folder))) { _, new in new }
        env[StrayProcesses.runMarkerVariable] = context.marker
        env[StrayProcesses.stageMarkerVariable] = "\(context.marker)/\(stage.id)/\(attempt)"
        for (name, value) in stage.environment { env[name] = value }
        for (name, value) in secrets[stage.id] ?? [:] { env[name] = value }
        return env
    }

    func launch(_ stage: Stage, attempt: Int, folder: RunFolder, plan: Plan, masker: SecretMasker) throws -> Launch {
        try FileManager.default.createDirectory(at: folder.artifacts(stage.id), withIntermediateDirectories: true)
        // What an earlier attempt wrote is not this attempt's: its outputs and its claim go first.
        for file in [folder.outputsFile(stage.id), folder.publishedOutputsFile(stage.id), folder.handoffFile(stage.id), folder.claimFile(stage.id)] {
            if unlink(file.path) != 0 && errno != ENOENT {
                throw RunFolderError("cannot remove \(file.path), which an earlier attempt wrote: \(String(cString: strerror(errno)))")
            }
        }
        handedOn.forget(stage.id)
        var env = try environment(for: stage, attempt: attempt, folder: folder, plan: plan)
        if case .shell = stage.spec {} else { env[AWSRequestLine.variable] = folder.awsRequestsFile(stage.id).path }
        let started: (process: StageProcess, stdout: Int32, stderr: Int32)
        if case .shell(let spec) = stage.spec {
            started = try StageProcess.start(
                executable: spec.shell, arguments: ["-c", spec.command], environment: env, directory: folder.workspace.path)
        } else if let server = server.get(start: serverStart(folder)),
            let forked = try StageProcess.start(
                stage: stage.id, folder: folder.root.path, on: server, environment: env, directory: folder.workspace.path)
        {
            started = forked
        } else {
            started = try StageProcess.start(
                executable: executable, arguments: ["__stage", folder.root.path, stage.id], environment: env,
                directory: folder.workspace.path)
        }
        return Launch(
            process: started.process, stdout: started.stdout, stderr: started.stderr,
            stageMarker: env[StrayProcesses.stageMarkerVariable]!)
    }
}

extension StageLauncher {
    /// Starts the run's stage server, unless `PIPELINE_STAGE_SERVER=off`: with the runner's environment and the
    /// run's marker, as every process of the run has.
    private func serverStart(_ folder: RunFolder) -> (@Sendable () -> StageServer?)? {
        guard environment[StageServer.variable] != "off" else { return nil }
        let serverEnvironment = environment.merging([StrayProcesses.runMarkerVariable: context.marker]) { _, marker in marker }
        return { [executable] in StageServer.start(executable: executable, runFolder: folder.root.path, environment: serverEnvironment) }
    }

    /// Ends the run's stage server, if it started one, once the stages it started have ended.
    public func finish() {
        server.finish()
    }
}

/// A launcher's stage server: not started yet, started, or not to be had (off, or it could not start).
final class StageServerSlot: Sendable {
    private enum State {
        case notStarted
        case started(StageServer)
        case unavailable
    }

    private let state = Mutex(State.notStarted)

    /// The server, started by `start` the first time (nil: none is to be had).
    func get(start: (@Sendable () -> StageServer?)?) -> StageServer? {
        state.withLock { state in
            switch state {
            case .started(let server): return server
            case .unavailable: return nil
            case .notStarted:
                guard let server = start?() else {
                    state = .unavailable
                    return nil
                }
                state = .started(server)
                return server
            }
        }
    }

    func finish() {
        let server: StageServer? = state.withLock { state in
            defer { state = .unavailable }
            if case .started(let server) = state { return server }
            return nil
        }
        server?.finish()
    }
}

/// The outputs each stage of a run hands on to the stages after it, read from the run folder once per stage and
/// kept: a launch reads every earlier stage's, which from disk would cost each launch a file per stage of the plan
/// (a 200-stage chain made 80,000 failed opens). The executor forgets a stage when it ends, so that its new outputs
/// (or none) are read again.
final class HandedOnOutputs: Sendable {
    /// By stage id: what it hands on, or nil when it hands on nothing (read, none there).
    private let known = Mutex<[String: [String: String]?]>([:])

    func all(of stages: [Stage], in folder: RunFolder) throws -> [String: [String: String]] {
        var all: [String: [String: String]] = [:]
        for stage in stages {
            let values: [String: String]?
            if let cached = known.withLock({ $0[stage.id] }) {
                values = cached
            } else {
                values = try folder.handedOnOutputs(of: stage.id)
                known.withLock { $0[stage.id] = .some(values) }
            }
            if let values { all[stage.id] = values }
        }
        return all
    }

    /// Reads `stage`'s outputs from the folder again next time (it ended, or starts again).
    func forget(_ stage: String) {
        _ = known.withLock { $0.removeValue(forKey: stage) }
    }
}
