import AWS
import Foundation
import StageContract

/// An answer that every stage of a run would otherwise ask AWS for once each (the id of the hosted zone of the
/// run's DNS records, the host of the account's registry), asked once per run: the first stage that needs it asks
/// and keeps the answer in the run folder (`KIND/NAME`), under a lock the others wait at, so five services cost one
/// call, not five.
struct RunLookup {
    /// The folder in the run folder the answers of this kind are kept in (`zones`, `registries`).
    let kind: String
    /// Whether a kept answer is one (the file is the run's, but a stage could have written anything there).
    let isValid: @Sendable (String) -> Bool

    /// The kept answer for `name`, else what `ask` answers, kept for the run's other stages.
    func value(
        _ name: String, folder: RunFolder, ask: () async throws -> String
    ) async throws -> String {
        let kept = file(name, folder: folder)
        try FileManager.default.createDirectory(at: kept.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lock = open(kept.path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw StageError("cannot open \(kept.path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }  // closing releases the lock
        try await onOwnThread { () throws(StageError) in
            guard flock(lock, LOCK_EX) == 0 else { throw StageError("cannot lock \(kept.path).lock: \(String(cString: strerror(errno)))") }
        }
        // Not kept yet, or not an answer: asked again.
        if let answer = try? String(contentsOf: kept, encoding: .utf8), isValid(answer) { return answer }
        let answer = try await ask()
        try answer.write(to: kept, atomically: true, encoding: .utf8)
        return answer
    }

    /// Forgets the answer kept for `name` (it was stale), so that the next stage asks again.
    func forget(_ name: String, folder: RunFolder) {
        // Nothing kept, or already gone: nothing to forget.
        try? FileManager.default.removeItem(at: file(name, folder: folder))
    }

    private func file(_ name: String, folder: RunFolder) -> URL {
        folder.root.appending(path: "\(kind)/\(RunFolder.fileName(name.lowercased()))")
    }
}
