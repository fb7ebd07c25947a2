import Foundation
import Runner

/// The run as machine-readable events on stdout, one JSON object per line. Stage output stays in the logs.
final class JSONConsole: RunConsole, Sendable {
    private let output = ConsoleOutput()

    private func event(_ name: String, _ fields: [String: Any]) {
        var object = fields
        object["event"] = name
        object["time"] = ISO8601DateFormatter().string(from: Date())
        // Strings and numbers only: this cannot fail.
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        output.write(bytes: Array(data) + [0x0A], beforeStatus: nil, status: nil)
    }

    func runStarted(id: Int, environment: String, stages: Int) {
        event("run.started", ["run": id, "environment": environment, "stages": stages])
    }

    func note(_ message: String) {
        event("note", ["message": message])
    }

    func stageStarted(_ stage: String, attempt: Int) {
        event("stage.started", ["stage": stage, "attempt": attempt])
    }

    func stageFinished(_ stage: String, status: StageStatus, attempt: Int, seconds: Double, message: String?) {
        var fields: [String: Any] = ["stage": stage, "status": status.rawValue, "attempt": attempt, "seconds": seconds]
        if let message { fields["message"] = message }
        event("stage.finished", fields)
    }

    func stageOutput(stage: String, lines: UnsafeRawBufferPointer) {}

    func runFinished(id: Int, status: RunStatus, summary: [StageSummary], seconds: Double) {
        let stages = summary.map {
            ["stage": $0.stage, "status": $0.status.rawValue, "seconds": $0.seconds, "attempts": $0.attempts] as [String: Any]
        }
        event("run.finished", ["run": id, "status": status.rawValue, "seconds": seconds, "stages": stages])
    }
}
