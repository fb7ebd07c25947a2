import Foundation

/// Where a run stands.
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    /// Waiting for the environment's lock.
    case queued
    /// Stages are running.
    case running
    /// Stopped at an approval gate; no process runs it until `pipeline approve` (or reject, or expiry).
    case waiting
    /// Approved at its gate, and no runner has taken it on yet (`pipeline approve --detach` hands it to one;
    /// `pipeline resume` takes it when that one never came). It keeps its environment.
    case approved
    /// Every stage succeeded or was skipped by its condition.
    case succeeded
    /// A stage failed.
    case failed
    /// A stage failed and the runner put a service back where it was before the run.
    case rolledBack = "rolled-back"
    /// Stopped by Ctrl-C or SIGTERM.
    case cancelled
    /// Its runner died without finishing it; `pipeline resume` continues it.
    case interrupted
    /// Started by a commit, it gave way to a newer commit's run before it ran anything.
    case superseded

    /// Whether the run can change no more (except through `resume`, for an interrupted one).
    public var isFinal: Bool { ![.queued, .running, .waiting, .approved].contains(self) }

    /// Whether a runner process owns the run in this status (a lease with a live owner).
    public var hasOwner: Bool { self == .queued || self == .running }
}

/// Where one stage of a run stands.
public enum StageStatus: String, Sendable, Codable, CaseIterable {
    /// Not started yet.
    case pending
    /// Its process runs.
    case running
    /// An approval gate waiting for people.
    case waiting
    /// It succeeded.
    case succeeded
    /// It failed (after its retries).
    case failed
    /// Its last attempt ran past its timeout.
    case timedOut
    /// Not run because a stage it depends on did not succeed, or `--fail-fast` stopped the run.
    case skipped
    /// Not run because its condition was false; counts as done for the stages after it.
    case conditionFalse
    /// Stopped because the run was cancelled.
    case cancelled
    /// Its runner died while it ran.
    case interrupted

    /// Whether the stages after it may start.
    public var letsDependentsRun: Bool { self == .succeeded || self == .conditionFalse }
    /// Whether the stage has reached an end in this run.
    public var isFinal: Bool { ![.pending, .running, .waiting].contains(self) }
}

/// A run as the state database keeps it.
public struct RunRecord: Sendable, Equatable {
    /// The run's number.
    public let id: Int
    /// The environment.
    public let environment: String
    /// Where it stands.
    public let status: RunStatus
    /// The commit asked for (`--sha`), when one was.
    public let sha: String?
    /// The ref asked for (`--ref`), or the environment's branch.
    public let ref: String?
    /// What started it (`cli`, `hook`, `watch`, `resume`).
    public let trigger: String
    /// Who started it.
    public let user: String
    /// The runner process that owns it now (or last did).
    public let pid: Int?
    /// The owner's host and start time, when known.
    public let owner: RunOwner?
    /// When the owner's lease runs out unless renewed.
    public let leaseExpiresAt: Date?
    /// The fencing token of the latest owner.
    public let fence: Int
    /// The per-run marker every stage process carries in its environment.
    public let marker: String
    /// When it was asked for, started and ended.
    public let createdAt: Date
    /// When its stages began.
    public let startedAt: Date?
    /// When it ended.
    public let finishedAt: Date?
    /// Why it ended as it did, in one line.
    public let message: String?
    /// The repository deployed from, when the run has one.
    public let source: String?
    /// The commit deployed, when the run has one.
    public let commit: CommitFacts?
}

extension RunRecord {
    /// The status to show: a queued or running run whose runner is provably gone shows as interrupted even when
    /// that could not be recorded yet (a full disk).
    public var shownStatus: RunStatus {
        status.hasOwner && pid != nil && !OwnerLiveness.isAlive(self) ? .interrupted : status
    }
}

/// What a run records of the commit it deploys.
public struct CommitFacts: Sendable, Equatable {
    /// The author's name and email.
    public let author: String
    /// When it was committed.
    public let time: Date
    /// The first line of its message.
    public let subject: String

    /// Facts about a commit.
    public init(author: String, time: Date, subject: String) {
        self.author = author
        self.time = time
        self.subject = subject
    }
}

/// One stage of a run.
public struct StageRunRecord: Sendable, Equatable {
    /// The stage's id.
    public let stageID: String
    /// Where it stands.
    public let status: StageStatus
    /// Attempts made so far.
    public let attempts: Int
    /// When its first attempt started.
    public let startedAt: Date?
    /// When its last attempt ended.
    public let finishedAt: Date?
    /// The last attempt's exit code.
    public let exitCode: Int?
    /// Why it ended as it did.
    public let message: String?
}

/// One thing that happened in a run.
public struct EventRecord: Sendable, Equatable {
    /// When.
    public let at: Date
    /// The stage, if it was about one.
    public let stageID: String?
    /// What kind of thing (`run.started`, `stage.finished`, ...).
    public let kind: String
    /// What happened, in one line.
    public let message: String
}
