import Foundation

/// What a run tells the person (or program) watching it.
public protocol RunConsole: OutputSink {
    /// The run began.
    func runStarted(id: Int, environment: String, stages: Int)
    /// A note about the run (waiting for a lock, resuming, ...).
    func note(_ message: String)
    /// A stage attempt began.
    func stageStarted(_ stage: String, attempt: Int)
    /// A stage ended (or was skipped).
    func stageFinished(_ stage: String, status: StageStatus, attempt: Int, seconds: Double, message: String?)
    /// The run ended.
    func runFinished(id: Int, status: RunStatus, summary: [StageSummary], seconds: Double)
}

/// One line of the summary table.
public struct StageSummary: Sendable {
    /// The stage.
    public let stage: String
    /// How it ended.
    public let status: StageStatus
    /// How long it ran, in all attempts.
    public let seconds: Double
    /// Attempts made.
    public let attempts: Int
}
