import Foundation
import PipelineDSL

/// A run's folder, laid out in this one place: `plan.json`, `logs/STAGE.log`, `outputs/STAGE.env` (written by the
/// stage) and `outputs/STAGE.json` (published by the runner, masked), `handoff/STAGE.json` (a built-in stage's
/// outputs as it wrote them, for later stages only), `artifacts/STAGE/`, `claims/STAGE.json` (what a stage
/// deployed or undid), `baselines/SERVICE.json`, `pipelines/` (the pipeline files the stages read) and `workspace/`.
public struct RunFolder: Sendable {
    /// The folder.
    public let root: URL

    /// The folder at `root`.
    public init(root: URL) {
        self.root = root
    }

    /// Makes the folders (owner only) and writes the plan the run runs, with a copy of the pipeline files its
    /// stages read (task-definition templates, by their path in the pipelines folder), so that a resumed run
    /// uses the same ones.
    public func create(plan: Plan, pipelineFiles: [String: Data] = [:]) throws {
        for sub in ["logs", "outputs", "handoff", "artifacts", "claims", "workspace", "pipelines"] {
            try OwnerOnly.createDirectory(root.appending(path: sub))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try OwnerOnly.write(encoder.encode(plan), to: planFile)
        for (path, data) in pipelineFiles {
            let file = pipelineFile(path)
            try OwnerOnly.createDirectory(file.deletingLastPathComponent())
            try OwnerOnly.write(data, to: file)
        }
    }

    /// The run's copy of a pipeline file, by its path in the pipelines folder.
    public func pipelineFile(_ path: String) -> URL { root.appending(path: "pipelines").appending(path: path) }

    /// The plan the run runs.
    public var planFile: URL { root.appending(path: "plan.json") }
    /// The stages' working folder.
    public var workspace: URL { root.appending(path: "workspace") }

    /// Reads the plan back.
    public func readPlan() throws -> Plan {
        if let kept = preloadedPlan, kept.path == planFile.path, kept.identity == PlanFileIdentity(planFile.path) {
            return kept.plan
        }
        return try JSONDecoder().decode(Plan.self, from: Data(contentsOf: planFile))
    }

    /// Reads the run's plan once for the processes this one forks (the run's stage server, before it forks its
    /// first stage): `readPlan` in them returns it while the file is the one read (same inode, size and time).
    /// Call it while the process has one thread, before any fork.
    public func preloadPlan() {
        let identity = PlanFileIdentity(planFile.path)
        // Not read: the stages read it themselves and say what is wrong with it.
        guard identity != nil, let plan = try? JSONDecoder().decode(Plan.self, from: Data(contentsOf: planFile)),
            identity == PlanFileIdentity(planFile.path)
        else { return }
        preloadedPlan = (planFile.path, identity, plan)
    }

    /// A stage's log.
    public func log(_ stage: String) -> URL { root.appending(path: "logs/\(Self.fileName(stage)).log") }
    /// The file a stage writes its outputs to.
    public func outputsFile(_ stage: String) -> URL { root.appending(path: "outputs/\(Self.fileName(stage)).env") }
    /// The outputs of a stage that succeeded, as the runner published them (masked).
    public func publishedOutputsFile(_ stage: String) -> URL { root.appending(path: "outputs/\(Self.fileName(stage)).json") }
    /// A built-in stage's outputs as it wrote them, which later stages read: what AWS and the registry answered
    /// (ARNs, digests, image references), kept out of reach of the masking that blanks a secret's value wherever a
    /// person sees it, so that a secret which happens to equal part of an identifier (an account id, a family name)
    /// does not break the stages after it. Owner-only, in the owner-only run folder; never shown.
    public func handoffFile(_ stage: String) -> URL { root.appending(path: "handoff/\(Self.fileName(stage)).json") }
    /// The folder a stage keeps its artifacts in.
    public func artifacts(_ stage: String) -> URL { root.appending(path: "artifacts/\(Self.fileName(stage))") }
    /// What a built-in stage noted of its AWS requests (`PIPELINE_AWS_REQUEST_LOG`), until the runner records it.
    public func awsRequestsFile(_ stage: String) -> URL { root.appending(path: "outputs/\(Self.fileName(stage)).aws-requests.jsonl") }
    /// What a stage claims about a deployment it made or undid (see `DeploymentClaim`).
    public func claimFile(_ stage: String) -> URL { root.appending(path: "claims/\(Self.fileName(stage)).json") }
    /// Who started the run, as each approval gate knows people (by gate id), written when the run is created: a
    /// runner that resumes the run later may be someone else, and must not become the one who "started" it.
    public var requestersFile: URL { root.appending(path: "requesters.json") }
    /// What a service ran before the run first changed it (see the deploy stage).
    public func baselineFile(service: String) -> URL { root.appending(path: "baselines/\(Self.fileName(service)).json") }

    /// Keeps who started the run, by approval gate (see `requestersFile`).
    public func writeRequesters(_ requesters: [String: String]) throws {
        try JSONEncoder().encode(requesters).write(to: requestersFile, options: .atomic)
    }

    /// Who started the run, by approval gate; nil for a run folder made before this was kept.
    public func requesters() throws -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: requestersFile.path) else { return nil }
        do {
            return try JSONDecoder().decode([String: String].self, from: data)
        } catch {
            throw RunFolderError("who started the run (\(requestersFile.path)) is unreadable: \(error)")
        }
    }

    /// The outputs `stage` published (it succeeded), if any. A file that cannot be read is an error, not "none".
    public func publishedOutputs(of stage: String) throws -> [String: String]? {
        let file = publishedOutputsFile(stage)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode([String: String].self, from: data)
        } catch {
            throw RunFolderError("the outputs of stage '\(stage)' (\(file.path)) are unreadable: \(error)")
        }
    }

    /// The outputs later stages get from `stage` (it succeeded): a built-in stage's as it wrote them, a shell
    /// stage's as published (masked), nil when it left none.
    public func handedOnOutputs(of stage: String) throws -> [String: String]? {
        let file = handoffFile(stage)
        guard let data = FileManager.default.contents(atPath: file.path) else { return try publishedOutputs(of: stage) }
        do {
            return try JSONDecoder().decode([String: String].self, from: data)
        } catch {
            throw RunFolderError("the outputs of stage '\(stage)' (\(file.path)) are unreadable: \(error)")
        }
    }

    /// The outputs a stage left in its outputs file, whether or not it succeeded (nil: it wrote none).
    public func writtenOutputs(of stage: String) throws -> [String: String]? {
        let file = outputsFile(stage)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        return StageOutputs.parse(String(decoding: data, as: UTF8.self))
    }

    /// The one mapping from a stage id or service name to its file names. Plans are validated so that every name
    /// is a safe identifier (`NameRules`), which this keeps as it is; anything else (a plan written by hand and never
    /// validated) still cannot leave its folder: other characters become `_`, and a name of dots becomes `_`.
    public static func fileName(_ name: String) -> String {
        let mapped = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        return mapped.allSatisfy({ $0 == "." }) ? "_" : mapped
    }
}

/// A run folder whose files cannot be read.
public struct RunFolderError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A file error in words: the system's reason (`No such file or directory`) rather than Foundation's wrapper.
public func describeFileError(_ error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
    if let decoding = error as? DecodingError { return FlatValues.describe(decoding) }
    if nsError.domain == NSCocoaErrorDomain {
        switch CocoaError.Code(rawValue: nsError.code) {
        case .fileReadNoSuchFile, .fileNoSuchFile: return "No such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: return "Permission denied"
        case .fileWriteOutOfSpace: return "No space left on device"
        case .fileWriteVolumeReadOnly: return "Read-only file system"
        default: return nsError.localizedDescription
        }
    }
    return "\(error)"
}

/// The plan a stage server read before forking its stages (`RunFolder.preloadPlan`). Written once, while the
/// process has one thread and before it forks; only read afterwards.
nonisolated(unsafe) private var preloadedPlan: (path: String, identity: PlanFileIdentity?, plan: Plan)?

/// Which file a path names, and its version: device, inode, size and modification time.
private struct PlanFileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let modified: Int
    let modifiedNanoseconds: Int

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
    }
}
