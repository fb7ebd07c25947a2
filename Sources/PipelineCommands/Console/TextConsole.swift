import Foundation
import Runner
import Synchronization

/// The run as a person watches it: stage starts and ends, each stage's output prefixed by its name, and on a
/// terminal a live status line (what runs and for how long, what waits); a summary table at the end.
final class TextConsole: RunConsole, Sendable {
    private let writer = ConsoleOutput()
    private let live: Bool

    /// What the status line shows, and its timer.
    private struct State {
        var running: [String: Date] = [:]
        var total = 0
        var done = 0
        var timer: (any DispatchSourceTimer)?
    }

    private let state = Mutex(State())

    init(live: Bool) {
        self.live = live
    }

    func runStarted(id: Int, environment: String, stages: Int) {
        state.withLock { $0.total = stages }
        emit("run \(id): \(environment), \(stages) stages\n")
        if live {
            state.withLock { state in
                let timer = DispatchSource.makeTimerSource(queue: .global())
                timer.schedule(deadline: .now() + 1, repeating: 1)
                timer.setEventHandler { [weak self] in self?.emit("") }
                timer.resume()
                state.timer = timer
            }
        }
    }

    func note(_ message: String) {
        emit("· \(message)\n")
    }

    func stageStarted(_ stage: String, attempt: Int) {
        state.withLock { $0.running[stage] = Date() }
        emit("▶ \(stage)\(attempt > 1 ? " (attempt \(attempt))" : "")\n")
    }

    func stageFinished(_ stage: String, status: StageStatus, attempt: Int, seconds: Double, message: String?) {
        state.withLock {
            $0.running[stage] = nil
            if status.isFinal && status != .running { $0.done += 1 }
        }
        let symbol = switch status {
        case .succeeded: "✔"
        case .conditionFalse: "–"
        case .skipped: "↷"
        case .cancelled: "■"
        case .waiting: "⏸"
        default: "✘"
        }
        let duration = attempt > 0 ? " \(Self.format(seconds))" : ""
        emit("\(symbol) \(stage) \(status.rawValue)\(duration)\(message.map { ": \($0)" } ?? "")\n")
    }

    func stageOutput(stage: String, lines: UnsafeRawBufferPointer) {
        var out: [UInt8] = []
        out.reserveCapacity(lines.count + 64)
        let prefix = Array("[\(stage)] ".utf8)
        var start = 0
        while start < lines.count {
            let newline = memchr(lines.baseAddress! + start, 0x0A, lines.count - start)
            let end = newline.map { lines.baseAddress!.distance(to: UnsafeRawPointer($0)) + 1 } ?? lines.count
            out.append(contentsOf: prefix)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: lines[start..<end]))
            start = end
        }
        writer.write(bytes: out, beforeStatus: live ? clearStatus() : nil, status: live ? statusLine() : nil)
    }

    func runFinished(id: Int, status: RunStatus, summary: [StageSummary], seconds: Double) {
        state.withLock {
            $0.timer?.cancel()
            $0.timer = nil
            $0.running.removeAll()
        }
        var table = TextTable(headers: ["STAGE", "STATUS", "DURATION", "ATTEMPTS"])
        for row in summary {
            table.add([row.stage, row.status.rawValue, row.attempts > 0 ? Self.format(row.seconds) : "-", String(row.attempts)])
        }
        let ending = switch status {
        case .rolledBack: "failed and was rolled back"
        case .waiting: "is waiting for approval"
        default: status.rawValue
        }
        emit("\n" + table.render() + "\nrun \(id) \(ending) in \(Self.format(seconds))\n", final: true)
    }

    private func emit(_ text: String, final: Bool = false) {
        writer.write(
            bytes: Array(text.utf8), beforeStatus: live ? clearStatus() : nil,
            status: live && !final ? statusLine() : nil)
    }

    private func clearStatus() -> [UInt8] { Array("\r\u{1B}[K".utf8) }

    private func statusLine() -> [UInt8] {
        let (active, waiting) = state.withLock { state -> ([String], Int) in
            let now = Date()
            let active = state.running.sorted { $0.value < $1.value }.map { "\($0.key) \(Self.format(now.timeIntervalSince($0.value)))" }
            return (active, max(0, state.total - state.done - state.running.count))
        }
        guard !active.isEmpty || waiting > 0 else { return [] }
        var line = "running: \(active.prefix(4).joined(separator: ", "))"
        if active.count > 4 { line += " +\(active.count - 4)" }
        line += " · waiting: \(waiting)"
        return Array(String(line.prefix(200)).utf8)
    }

    static func format(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        if seconds < 120 { return "\(Int(seconds))s" }
        return "\(Int(seconds) / 60)m\(String(format: "%02d", Int(seconds) % 60))s"
    }
}

/// Writes whole chunks to stdout, keeping a live status line at the bottom on a terminal.
final class ConsoleOutput: Sendable {
    /// One write at a time, so that chunks of different stages never interleave.
    private let lock = Mutex(())

    func write(bytes: [UInt8], beforeStatus: [UInt8]?, status: [UInt8]?) {
        lock.withLock { _ in
            var out: [UInt8] = []
            if let beforeStatus { out += beforeStatus }
            out += bytes
            if let status { out += status }
            out.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}
