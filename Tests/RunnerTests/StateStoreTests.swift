import Foundation
import Runner
import TestSupport
import Testing

@Suite struct StateStoreTests {
    @Test func theDatabaseIsPrivateAndMigratesOnce() throws {
        let home = TemporaryDirectory()
        _ = try StateStore(home: home.url)
        let again = try StateStore(home: home.url)
        #expect(try again.database.query("PRAGMA user_version").first?["user_version"].int == 3)
        #expect(try again.database.query("PRAGMA table_info(runs)").contains { $0["name"].string == "commit_subject" })
        #expect(try again.database.query("PRAGMA journal_mode").first?["journal_mode"].string == "wal")
        let mode = try FileManager.default.attributesOfItem(atPath: home.url.appending(path: "state.db").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func oneRunHoldsAnEnvironmentAndTheNextWaitsItsTurn() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let me = getpid()
        let first = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t", pid: me)
        let second = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t", pid: me)
        let other = try store.createRun(environment: "prod", sha: nil, ref: nil, trigger: "test", user: "t", pid: me)
        #expect(try store.tryAcquireLock(environment: "staging", run: second.id) == .queuedBehind(try store.run(first.id)!))
        #expect(try store.tryAcquireLock(environment: "staging", run: first.id) == .acquired)
        guard case .busy(let owner) = try store.tryAcquireLock(environment: "staging", run: second.id) else {
            Issue.record("the second run got the lock")
            return
        }
        #expect(owner.id == first.id)
        #expect(try store.tryAcquireLock(environment: "prod", run: other.id) == .acquired)
        try store.setRunStatus(first.id, .succeeded)
        #expect(try store.tryAcquireLock(environment: "staging", run: second.id) == .acquired)
    }

    @Test func aDeadOwnersRunIsInterruptedAndItsLockTakenOver() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let dead = try runProcess(URL(filePath: "/bin/sh"), ["-c", "echo $$"]).stdout
        let deadPID = try #require(Int32(dead.trimmingCharacters(in: .whitespacesAndNewlines)))
        let orphan = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t", pid: deadPID)
        #expect(try store.tryAcquireLock(environment: "staging", run: orphan.id) == .acquired)
        try store.setStageStatus(orphan.id, "build", .running, attempt: 1)
        let next = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t", pid: getpid())
        #expect(try store.tryAcquireLock(environment: "staging", run: next.id) == .acquired)
        #expect(try store.run(orphan.id)?.status == .interrupted)
        #expect(try store.stageRuns(orphan.id).first?.status == .interrupted)
    }
}
