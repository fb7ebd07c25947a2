import Foundation
import PipelineDSL
import StageContract

/// A run as the API and `pipeline status --json` show it (one shape for both).
public struct RunView: Codable, Sendable, Equatable {
    public var id: Int
    public var environment: String
    public var status: RunStatus
    public var sha: String?
    public var ref: String?
    public var trigger: String
    public var user: String
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var message: String?
    public var commit: CommitView?
    /// Every stage of the plan, in plan order (the stages that never started too); empty in lists.
    public var stages: [StageView]
    /// For a run that stopped at an approval gate: what it would change per service once let through (worked out
    /// when it stopped there; see `pipeline diff`), kept after the gate as the record of what was let through.
    /// Absent for a run that never stopped at a gate.
    public var changes: [ServiceChange]?

    /// The commit a run deploys.
    public struct CommitView: Codable, Sendable, Equatable {
        public var author: String
        public var time: Date
        public var subject: String
    }

    /// One stage of a run.
    public struct StageView: Codable, Sendable, Equatable {
        public var id: String
        public var kind: String?
        public var service: String?
        public var needs: [String]
        public var status: StageStatus
        public var attempts: Int
        public var startedAt: Date?
        public var finishedAt: Date?
        public var exitCode: Int?
        public var message: String?
        /// Files the stage kept, relative to its artifacts folder.
        public var artifacts: [String]
    }

    /// `record` without its stages (for lists).
    public init(_ record: RunRecord) {
        id = record.id
        environment = record.environment
        status = record.shownStatus
        sha = record.sha
        ref = record.ref
        trigger = record.trigger
        user = record.user
        createdAt = record.createdAt
        startedAt = record.startedAt
        finishedAt = record.finishedAt
        message = record.message
        commit = record.commit.map { CommitView(author: $0.author, time: $0.time, subject: $0.subject) }
        stages = []
    }

    /// `record` with every stage of its plan and what the state says of each. `plan` is the run's plan when the
    /// caller has it already (it never changes once the run is made); nil reads it from the run folder.
    public static func detailed(_ record: RunRecord, store: StateStore, plan: Plan? = nil) throws -> RunView {
        var view = RunView(record)
        let folder = RunFolder(root: store.runFolder(record.id))
        let recorded = Dictionary(try store.stageRuns(record.id).map { ($0.stageID, $0) }) { first, _ in first }
        // A run whose plan cannot be read shows its recorded stages alone.
        let planned = (plan ?? (try? folder.readPlan()))?.stages ?? []
        var seen = Set<String>()
        for stage in planned {
            seen.insert(stage.id)
            view.stages.append(stageView(stage.id, stage: stage, record: recorded[stage.id], folder: folder))
        }
        for (id, record) in recorded.sorted(by: { $0.key < $1.key }) where !seen.contains(id) {
            view.stages.append(stageView(id, stage: nil, record: record, folder: folder))
        }
        // What an approval gate showed, worked out when the run stopped there: kept once approved, as the record
        // of what was let through.
        view.changes = folder.gateChanges()
        return view
    }

    private static func stageView(_ id: String, stage: Stage?, record: StageRunRecord?, folder: RunFolder) -> StageView {
        StageView(
            id: id, kind: stage.map { $0.kind.rawValue }, service: stage?.service, needs: stage?.dependsOn ?? [],
            status: record?.status ?? .pending, attempts: record?.attempts ?? 0, startedAt: record?.startedAt,
            finishedAt: record?.finishedAt, exitCode: record?.exitCode, message: record?.message,
            artifacts: record?.startedAt == nil ? [] : artifactFiles(folder.artifacts(id)))
    }

    /// Regular files under `root`, relative to it, sorted.
    static func artifactFiles(_ root: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var files: [String] = []
        let prefix = root.standardizedFileURL.path + "/"
        for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            let path = url.standardizedFileURL.path
            if path.hasPrefix(prefix) { files.append(String(path.dropFirst(prefix.count))) }
        }
        return files.sorted()
    }
}

/// What is live in one environment for one service, from the deployment records.
public struct LiveView: Codable, Sendable, Equatable {
    public var environment: String
    public var service: String
    public var kind: String
    public var sha: String
    public var subject: String?
    public var image: String?
    public var digest: String?
    public var taskDefinitionArn: String?
    public var at: Date
    public var run: Int?
    public var trigger: String?
    public var approvedBy: String?
    public var startedBy: String?

    public init(
        environment: String, service: String, kind: String, sha: String, subject: String?, image: String?, digest: String?,
        taskDefinitionArn: String?, at: Date, run: Int?, trigger: String?, approvedBy: String?, startedBy: String?
    ) {
        self.environment = environment
        self.service = service
        self.kind = kind
        self.sha = sha
        self.subject = subject
        self.image = image
        self.digest = digest
        self.taskDefinitionArn = taskDefinitionArn
        self.at = at
        self.run = run
        self.trigger = trigger
        self.approvedBy = approvedBy
        self.startedBy = startedBy
    }
}
