import Foundation
import PipelineDSL
import Runner
import Stages
import Synchronization

/// A console that also posts the run's events to the pipeline's run-level webhooks (`Notifications`): started,
/// waiting for approval, succeeded, failed, rolled back. Each post is logged in the run folder
/// (`notifications.log`); one that fails is noted and never changes how the run ends. Posts go out in the
/// background, so a slow webhook never holds a stage up; `delivered()` waits for them before the command ends.
final class NotifyingConsole: RunConsole, Sendable {
    private let inner: any RunConsole
    private let targets: [(spec: NotificationSpec, url: String)]
    private let store: StateStore
    /// The team's server (`PIPELINE_SERVER_URL`, which `pipeline serve --url` hands its runs): messages link to
    /// the run's page and its approval page there.
    private let serverURL: String?
    /// The posts under way, in order: each waits for the one before it, so the log keeps the events' order.
    private let last = Mutex<Task<Void, Never>?>(nil)

    private init(_ inner: any RunConsole, targets: [(spec: NotificationSpec, url: String)], store: StateStore, serverURL: String?) {
        self.inner = inner
        self.targets = targets
        self.store = store
        self.serverURL = serverURL
    }

    /// The variable naming the team's server.
    static let serverVariable = "PIPELINE_SERVER_URL"

    /// Waits until every post made so far was answered (or gave up) and logged, for at most `limit` seconds (one
    /// webhook's timeout): a hanging webhook never holds the command's end longer than that.
    func delivered(limit: Double = 5) async {
        guard let pending = last.withLock({ $0 }) else { return }
        let finished = await FirstOf.race({ await pending.value }, orAfter: limit)
        if !finished {
            inner.note("warning: gave up waiting for a webhook after \(Int(limit))s; what it did not answer is not in notifications.log")
        }
    }

    /// A console over `inner` posting to the plan's webhooks, whose URLs are read now (a Secrets Manager one
    /// through `lookup`); one that cannot be read is off for this run, with a warning.
    static func make(
        _ inner: any RunConsole, plan: Plan, store: StateStore, environment: [String: String], lookup: SecretsManagerLookup
    ) async -> NotifyingConsole {
        var targets: [(spec: NotificationSpec, url: String)] = []
        for (index, spec) in plan.notifications.enumerated() {
            let url: String?
            var why = ""
            switch spec.webhook.store {
            case .environment: url = environment[spec.webhook.name].flatMap { $0.isEmpty ? nil : $0 }
            case .secretsManager:
                do {
                    url = try await lookup.value(spec.webhook)
                } catch {
                    url = nil
                    why = ": \(error)"
                }
            }
            if let url {
                targets.append((spec, url))
            } else {
                inner.note("warning: notification \(index + 1) is off for this run: its webhook secret \(spec.webhook.name) cannot be read\(why)")
            }
        }
        let server = environment[serverVariable].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            .flatMap { $0.lowercased().hasPrefix("http://") || $0.lowercased().hasPrefix("https://") ? $0 : nil }
        return NotifyingConsole(inner, targets: targets, store: store, serverURL: server)
    }

    /// The webhook URLs by a name, for the run's masking.
    var secretsByName: [String: String] {
        Dictionary(targets.enumerated().map { ("webhook\($0.offset + 1)", $0.element.url) }) { first, _ in first }
    }

    func runStarted(id: Int, environment: String, stages: Int) {
        inner.runStarted(id: id, environment: environment, stages: stages)
        post(.started, run: id, detail: "started (\(stages) stages)")
    }

    func note(_ message: String) { inner.note(message) }

    func stageOutput(stage: String, lines: UnsafeRawBufferPointer) { inner.stageOutput(stage: stage, lines: lines) }

    func stageStarted(_ stage: String, attempt: Int) { inner.stageStarted(stage, attempt: attempt) }

    func stageFinished(_ stage: String, status: StageStatus, attempt: Int, seconds: Double, message: String?) {
        inner.stageFinished(stage, status: status, attempt: attempt, seconds: seconds, message: message)
    }

    func runFinished(id: Int, status: RunStatus, summary: [StageSummary], seconds: Double) {
        inner.runFinished(id: id, status: status, summary: summary, seconds: seconds)
        let record = try? store.run(id)  // only adds the trigger and message; `post` says when the run cannot be read
        switch status {
        case .succeeded where record?.trigger == "rollback": post(.rolledBack, run: id, detail: "rolled back as asked")
        case .succeeded: post(.succeeded, run: id, detail: "succeeded")
        case .waiting: post(.waitingForApproval, run: id, detail: "is waiting for approval: `pipeline approve \(record?.environment ?? "")`")
        case .rolledBack:
            post(.rolledBack, run: id, detail: "failed and was rolled back (\(record?.message ?? ""))")
            post(.failed, run: id, detail: "failed and was rolled back (\(record?.message ?? ""))")
        case .failed, .cancelled, .interrupted: post(.failed, run: id, detail: "\(status.rawValue): \(record?.message ?? "")")
        default: break
        }
    }

    private func post(_ event: RunEvent, run id: Int, detail: String) {
        let chosen = targets.filter { $0.spec.events.contains(event) }
        guard !chosen.isEmpty else { return }
        let record: RunRecord
        do {
            guard let found = try store.run(id) else { return }
            record = found
        } catch {
            inner.note("warning: the \(event.rawValue) notification was not sent: cannot read run \(id): \(error)")
            return
        }
        let sha = record.sha.map { String($0.prefix(12)) } ?? "no commit"
        var text = "pipeline: \(record.environment) run \(id) (\(sha), by \(record.user)) \(detail) — `pipeline status \(id)`"
        var fields = [
            "event": event.rawValue, "environment": record.environment, "run": String(id), "sha": record.sha ?? "", "user": record.user,
            "status": record.status.rawValue, "command": "pipeline status \(id)",
        ]
        if let serverURL {
            fields["url"] = "\(serverURL)/runs/\(id)"
            text += " — \(serverURL)/runs/\(id)"
            if event == .waitingForApproval {
                fields["approval_url"] = "\(serverURL)/runs/\(id)/approval"
                text += " (approve at \(serverURL)/runs/\(id)/approval)"
            }
        }
        let log = store.runFolder(id).appending(path: "notifications.log")
        let (message, values) = (text, fields)
        last.withLock { previous in
            previous = Task { [previous, inner] in
                await previous?.value
                // The webhooks of one event at once; the events one after another, in order.
                let failures = await withTaskGroup(of: (Int, String?).self) { group in
                    for (index, target) in chosen.enumerated() {
                        group.addTask { (index, await Webhook.post(url: target.url, format: target.spec.format, text: message, fields: values)) }
                    }
                    var failures: [Int: String?] = [:]
                    for await (index, failure) in group { failures[index] = failure }
                    return failures
                }
                for (index, target) in chosen.enumerated() {
                    Self.record(event, index: index, target: target, failure: failures[index] ?? nil, log: log, inner: inner)
                }
            }
        }
    }

    private static func record(
        _ event: RunEvent, index: Int, target: (spec: NotificationSpec, url: String), failure: String?, log: URL, inner: any RunConsole
    ) {
        let line = "\(Date().formatted(.iso8601)) \(event.rawValue) → webhook \(index + 1) (\(target.spec.webhook.name)): \(failure ?? "delivered")\n"
        do {
            if FileManager.default.fileExists(atPath: log.path) {
                let handle = try FileHandle(forWritingTo: log)
                defer { try? handle.close() }  // written already; a failing close loses nothing
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(line.utf8))
            } else {
                try line.write(to: log, atomically: false, encoding: .utf8)
            }
        } catch {
            inner.note("warning: cannot record the notification in \(log.path): \(error)")
        }
        if let failure { inner.note("warning: the \(event.rawValue) notification was not delivered: \(failure)") }
    }
}

/// Waiting for work, up to a limit.
enum FirstOf {
    /// Whether `work` finished within `seconds`; it is not cancelled when it did not.
    static func race(_ work: @escaping @Sendable () async -> Void, orAfter seconds: Double) async -> Bool {
        final class Once: Sendable {
            let done = Mutex(false)
            /// True for the first caller only.
            func first() -> Bool { done.withLock { done in defer { done = true }; return !done } }
        }
        let once = Once()
        return await withCheckedContinuation { continuation in
            Task {
                await work()
                if once.first() { continuation.resume(returning: true) }
            }
            Task {
                try? await Task.sleep(for: .seconds(seconds))  // cancelled or not, the time is up
                if once.first() { continuation.resume(returning: false) }
            }
        }
    }
}
