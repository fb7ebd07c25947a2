import AWS
import Foundation
import PipelineDSL
import StageContract
import Synchronization

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

    /// The recorded baseline of `service`, if the run has one.
    static func recorded(service: String, folder: RunFolder) throws -> ServiceBaseline? {
        guard let data = FileManager.default.contents(atPath: folder.baselineFile(service: service).path) else { return nil }
        do {
            return try JSONDecoder.baseline.decode(ServiceBaseline.self, from: data)
        } catch {
            throw StageError("the recorded baseline of \(service) (\(folder.baselineFile(service: service).path)) is unreadable: \(error)")
        }
    }

    /// The baseline of `service`: the recorded one, or else `live` (what ECS says it runs now), recorded first —
    /// atomically and only once, even when two attempts race. Throws, changing nothing, when it cannot be recorded.
    static func recordOnce(service: String, folder: RunFolder, attempt: Int, live: String) throws -> (ServiceBaseline, fresh: Bool) {
        if let existing = try recorded(service: service, folder: folder) { return (existing, false) }
        let target = folder.baselineFile(service: service)
        let baseline = ServiceBaseline(taskDefinition: live, recordedAt: Date(), attempt: attempt)
        do {
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = target.deletingLastPathComponent().appending(path: ".\(UUID().uuidString).tmp")
            try JSONEncoder.baseline.encode(baseline).write(to: temporary)
            defer { unlink(temporary.path) }
            // link(2) never replaces: the first attempt to record wins, a later one reads what it recorded.
            if link(temporary.path, target.path) != 0 {
                guard errno == EEXIST, let existing = try recorded(service: service, folder: folder) else {
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
final class CancelledRollout {
    /// Whether an UpdateService is in flight: shared with the signal handler.
    private final class InFlight: Sendable {
        let value = Mutex(false)
    }
    private let updateInFlight = InFlight()
    private let source: any DispatchSourceSignal

    /// Watches for SIGTERM from now on, for `service` moving from `baseline` to `target`.
    init(service: String, update: UpdateServiceSpec, baseline: String, target: String, client: AWSClient, context: StageContext) {
        let leave = context.onCancel == .leave
        signal(SIGTERM, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        let updateInFlight = updateInFlight
        source.setEventHandler {
            // An UpdateService in flight finishes first, so that the rollback is the last word.
            for _ in 0..<100 where updateInFlight.value.withLock({ $0 }) { usleep(50_000) }
            let done = DispatchSemaphore(value: 0)
            Task {
                defer { done.signal() }
                if leave {
                    Self.record(context) { try context.outputs.set(RollbackReport(rolledBack: false, cancelledDuring: target)) }
                    Self.say("cancelled: \(service) was left on \(target), its rollout not waited for (before the run it ran \(baseline)); `pipeline resume` finishes the deploy, `pipeline rollback \(service) --to previous` puts it back")
                    return
                }
                do {
                    _ = try await client.updateService(cluster: update.cluster, service: update.ecsService, taskDefinition: baseline)
                    Self.record(context) {
                        try context.outputs.set(RollbackReport(rolledBack: true, rolledBackTo: baseline, rollbackHealthy: "unchecked"))
                        try context.claimRollback(service: service, to: baseline, image: nil)
                    }
                    Self.say("cancelled: put \(service) back on \(baseline), what it ran before the run (not waited for; --on-cancel leave would have left \(target))")
                } catch {
                    Self.record(context) { try context.outputs.set(RollbackReport(rolledBack: false, rollbackError: "\(error)")) }
                    Self.say("cancelled, and putting \(service) back on \(baseline) failed: \(error); it may run \(target): `pipeline rollback \(service) --to previous`")
                }
            }
            done.wait()
            exit(143)
        }
        source.resume()
    }

    /// Runs `body`, saying in the log when what it writes cannot be written (the message after it still tells).
    private static func record(_ context: StageContext, _ body: () throws -> Void) {
        do { try body() } catch { say("cannot write the stage's outputs: \(error)") }
    }

    /// Runs `body` (an UpdateService) so that a rollback on cancel waits for it to finish.
    func changing<T>(_ body: () async throws -> T) async rethrows -> T {
        updateInFlight.value.withLock { $0 = true }
        defer { updateInFlight.value.withLock { $0 = false } }
        return try await body()
    }

    private static func say(_ line: String) {
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
    }
}
