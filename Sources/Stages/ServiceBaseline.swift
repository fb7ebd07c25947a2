import AWS
import Foundation
import PipelineDSL

/// What a service ran before a run first changed it, recorded once per run in the run folder
/// (`baselines/SERVICE.json`) before the first change, and never overwritten: a retried attempt or a resumed run
/// reads it instead of asking ECS again (by then ECS may run the run's own, failing revision), so a rollback goes
/// back to what really ran before.
struct ServiceBaseline: Codable, Equatable {
    /// The task definition the service ran.
    let taskDefinition: String
    /// When it was recorded.
    let recordedAt: Date
    /// The stage attempt that recorded it.
    let attempt: Int

    static func file(service: String, runFolder: URL) -> URL {
        let name = String(service.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
        return runFolder.appending(path: "baselines/\(name).json")
    }

    /// The recorded baseline of `service`, if the run has one.
    static func recorded(service: String, runFolder: URL) throws -> ServiceBaseline? {
        guard let data = FileManager.default.contents(atPath: file(service: service, runFolder: runFolder).path) else { return nil }
        do {
            return try JSONDecoder.baseline.decode(ServiceBaseline.self, from: data)
        } catch {
            throw StageError("the recorded baseline of \(service) (\(file(service: service, runFolder: runFolder).path)) is unreadable: \(error)")
        }
    }

    /// The baseline of `service`: the recorded one, or else `live` (what ECS says it runs now), recorded first —
    /// atomically and only once, even when two attempts race. Throws, changing nothing, when it cannot be recorded.
    static func recordOnce(service: String, runFolder: URL, attempt: Int, live: String) throws -> (ServiceBaseline, fresh: Bool) {
        if let existing = try recorded(service: service, runFolder: runFolder) { return (existing, false) }
        let target = file(service: service, runFolder: runFolder)
        let baseline = ServiceBaseline(taskDefinition: live, recordedAt: Date(), attempt: attempt)
        do {
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = target.deletingLastPathComponent().appending(path: ".\(UUID().uuidString).tmp")
            try JSONEncoder.baseline.encode(baseline).write(to: temporary)
            defer { unlink(temporary.path) }
            // link(2) never replaces: the first attempt to record wins, a later one reads what it recorded.
            if link(temporary.path, target.path) != 0 {
                guard errno == EEXIST, let existing = try recorded(service: service, runFolder: runFolder) else {
                    throw StageError("cannot record \(target.path): \(String(cString: strerror(errno)))")
                }
                return (existing, false)
            }
        } catch let error as StageError {
            throw error
        } catch {
            throw StageError("cannot record what \(service) runs before the run changes it (\(target.path)): \(error)")
        }
        return (baseline, true)
    }
}

extension JSONEncoder {
    fileprivate static var baseline: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

extension JSONDecoder {
    fileprivate static var baseline: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// What a deploy or health-check stage does when the run is cancelled (SIGTERM from the runner, after Ctrl-C)
/// once it has changed the service: by default it puts the service back on its baseline with one UpdateService,
/// not waited for (the runner's kill grace is short, and the person asked to stop); with
/// `PIPELINE_ON_CANCEL=leave` it leaves the new revision in place and says how to finish or undo it. Either way it
/// says so in the stage's outputs and log, and exits 143.
final class CancelledRollout: @unchecked Sendable {  // the state is behind `lock`; the signal source is set up once
    private let lock = NSLock()
    private var updateInFlight = false
    private var source: (any DispatchSourceSignal)?

    /// Watches for SIGTERM from now on, for `service` moving from `baseline` to `target`.
    init(service: String, update: UpdateServiceSpec, baseline: String, target: String, client: AWSClient, outputs: StageOutputFile, environment: [String: String]) {
        let leave = environment["PIPELINE_ON_CANCEL"] == "leave"
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { [self] in
            // An UpdateService in flight finishes first, so that the rollback is the last word.
            for _ in 0..<100 where lock.withLock({ updateInFlight }) { usleep(50_000) }
            let done = DispatchSemaphore(value: 0)
            Task {
                defer { done.signal() }
                if leave {
                    try? outputs.set(["cancelledDuring": target, "rolledBack": "false"])  // the message below says it all
                    Self.say("cancelled: \(service) was left on \(target), its rollout not waited for (before the run it ran \(baseline)); `pipeline resume` finishes the deploy, `pipeline rollback \(service) --to previous` puts it back")
                    return
                }
                do {
                    _ = try await client.updateService(cluster: update.cluster, service: update.ecsService, taskDefinition: baseline)
                    try? outputs.set(["rolledBack": "true", "rolledBackTo": baseline, "rollbackHealthy": "unchecked"])  // the message below says it all
                    Self.say("cancelled: put \(service) back on \(baseline), what it ran before the run (not waited for; --on-cancel leave would have left \(target))")
                } catch {
                    try? outputs.set(["rolledBack": "false", "rollbackError": "\(error)"])  // the message below says it all
                    Self.say("cancelled, and putting \(service) back on \(baseline) failed: \(error); it may run \(target): `pipeline rollback \(service) --to previous`")
                }
            }
            done.wait()
            exit(143)
        }
        source.resume()
        self.source = source
    }

    /// Runs `body` (an UpdateService) so that a rollback on cancel waits for it to finish.
    func changing<T>(_ body: () async throws -> T) async rethrows -> T {
        lock.withLock { updateInFlight = true }
        defer { lock.withLock { updateInFlight = false } }
        return try await body()
    }

    private static func say(_ line: String) {
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
    }
}
