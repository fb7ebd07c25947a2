import Foundation
import PipelineDSL
import Runner
import StageContract
import Synchronization
import TestSupport
import Testing

@Suite struct StateStoreTests {
    @Test func theDatabaseIsPrivateAndMigratesOnce() throws {
        let home = TemporaryDirectory()
        _ = try StateStore(home: home.url)
        let again = try StateStore(home: home.url)
        #expect(try again.database.query("PRAGMA user_version").first?["user_version"].int == 8)
        #expect(try again.database.query("PRAGMA table_info(runs)").contains { $0["name"].string == "fence" })
        #expect(try again.database.query("PRAGMA journal_mode").first?["journal_mode"].string == "wal")
        let mode = try FileManager.default.attributesOfItem(atPath: home.url.appending(path: "state.db").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// The process's umask is one for all its threads and inherited by every child: making the state, a run folder
    /// or a private file must never lower it, not even for a moment, or a checkout or a child started meanwhile makes
    /// owner-only files (a CI run built an image from a checkout whose files were 0600: another digest for the same
    /// commit, and the immutable SHA tag refused it).
    @Test func privateFilesAreMadeWithoutTouchingTheProcesssUmask() throws {
        @Sendable func currentUmask() -> String? {
            (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("Umask:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
        }
        let before = try #require(currentUmask())
        let seen = Mutex<Set<String>>([])
        let done = Atomic<Bool>(false)
        let watcher = Thread {
            while !done.load(ordering: .relaxed) {
                if let mask = currentUmask() { seen.withLock { _ = $0.insert(mask) } }
            }
        }
        watcher.start()
        let folder = TemporaryDirectory()
        let plan = Plan(
            pipeline: "p", source: Source(), parallelism: 1,
            environment: EnvironmentSpec(name: "staging", branch: "main", region: "us-east-1", cluster: "c"), services: [],
            notifications: [], stages: [])
        var stores: [StateStore] = []  // open, so each keeps its WAL file
        for index in 0..<40 {
            let home = folder.url.appending(path: "home-\(index)")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            stores.append(try StateStore(home: home))
            try RunFolder(root: home.appending(path: "runs/1")).create(plan: plan, pipelineFiles: ["taskdefs/a.json": Data("{}".utf8)])
            try OwnerOnly.write(Data("secret".utf8), to: home.appending(path: "key"))
        }
        done.store(true, ordering: .relaxed)
        while watcher.isExecuting { usleep(1000) }
        #expect(seen.withLock { $0 } == [before])

        let home = folder.url.appending(path: "home-0")
        func mode(_ path: String) throws -> Int? {
            try FileManager.default.attributesOfItem(atPath: home.appending(path: path).path)[.posixPermissions] as? Int
        }
        #expect(try mode("state.db") == 0o600)
        #expect(try mode("state.db-wal") == 0o600)
        #expect(try mode("key") == 0o600)
        #expect(try mode("runs") == 0o700)
        #expect(try mode("runs/1/logs") == 0o700)
        #expect(try mode("runs/1/plan.json") == 0o600)
        #expect(try mode("runs/1/pipelines/taskdefs/a.json") == 0o600)
        withExtendedLifetime(stores) {}
    }

    /// What the forge reporter asks for: every recent run with a commit whose report is not final, however many
    /// newer runs there are; not one reported to its end, one given up on, one without a commit, or one too old.
    @Test func runsToReportAreThoseNotFinallyReportedHoweverManyNewerRunsThereAre() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let sha = String(repeating: "b", count: 40)
        let waiting = try store.createRun(environment: "prod", sha: sha, ref: nil, trigger: "cli", user: "dev").0.id
        try store.setRunStatus(waiting, .waiting)
        let givenUp = try store.createRun(environment: "staging", sha: sha, ref: nil, trigger: "cli", user: "dev").0.id
        try store.setRunStatus(givenUp, .failed)
        var report = ForgeReport(run: givenUp)
        report.failures = 8
        report.nextTry = .distantFuture
        try store.saveForgeReport(report)
        let old = try store.createRun(environment: "staging", sha: sha, ref: nil, trigger: "cli", user: "dev").0.id
        try store.database.execute("UPDATE runs SET created_at = ? WHERE id = ?", [.real(Date().addingTimeInterval(-8 * 86400).timeIntervalSince1970), .integer(Int64(old))])
        _ = try store.createRun(environment: "staging", sha: nil, ref: "main", trigger: "cli", user: "dev")
        var reported: [Int] = []
        for _ in 0..<60 {
            let id = try store.createRun(environment: "staging", sha: sha, ref: nil, trigger: "cli", user: "dev").0.id
            try store.setRunStatus(id, .succeeded)
            var done = ForgeReport(run: id)
            done.statusState = "success"
            done.deploymentID = id
            done.deploymentState = "success"
            try store.saveForgeReport(done)
            reported.append(id)
        }
        let fresh = try store.createRun(environment: "staging", sha: sha, ref: nil, trigger: "cli", user: "dev").0.id
        try store.setRunStatus(fresh, .succeeded)
        // A final report for a run that goes on again (resumed) is due again.
        try store.setRunStatus(reported[0], .running)
        let due = try store.runsToReport(since: Date().addingTimeInterval(-7 * 86400)).map(\.id)
        #expect(due == [waiting, reported[0], fresh], "\(due)")
    }

    @Test func oneRunHoldsAnEnvironmentAndTheNextWaitsItsTurn() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let (first, firstLease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        let (_, secondLease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        let (_, otherLease) = try store.createRun(environment: "prod", sha: nil, ref: nil, trigger: "test", user: "t")
        #expect(try store.tryAcquireLock(environment: "staging", lease: secondLease) == .queuedBehind(try store.run(first.id)!))
        #expect(try store.tryAcquireLock(environment: "staging", lease: firstLease) == .acquired)
        guard case .busy(let owner) = try store.tryAcquireLock(environment: "staging", lease: secondLease) else {
            Issue.record("the second run got the lock")
            return
        }
        #expect(owner.id == first.id)
        #expect(try store.tryAcquireLock(environment: "prod", lease: otherLease) == .acquired)
        try store.setRunStatus(first.id, .succeeded)
        #expect(try store.tryAcquireLock(environment: "staging", lease: secondLease) == .acquired)
    }

    @Test func aDeadOwnersRunIsInterruptedAndItsLockTakenOver() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let (orphan, orphanLease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        #expect(try store.tryAcquireLock(environment: "staging", lease: orphanLease) == .acquired)
        try store.setStageStatus(orphan.id, "build", .running, attempt: 1)
        // Its owner dies (as if it had been another process, killed with -9).
        let dead = try deadOwner()
        try store.database.execute(
            "UPDATE runs SET pid = ?, owner_started = ? WHERE id = ?", [.integer(Int64(dead.pid)), .text(dead.started), .integer(Int64(orphan.id))])
        let (_, next) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        #expect(try store.tryAcquireLock(environment: "staging", lease: next) == .acquired)
        #expect(try store.run(orphan.id)?.status == .interrupted)
        #expect(try store.stageRuns(orphan.id).first?.status == .interrupted)
        // The dead owner is fenced: whatever it writes now is refused.
        #expect(throws: LeaseLost.self) { try store.fenced(orphanLease) { try store.addEvent(orphan.id, stage: nil, kind: "late", message: "x") } }
        #expect(throws: LeaseLost.self) { try store.renew(orphanLease) }
    }

    @Test func ownershipIsTakenOnceAndEveryNewOwnerFencesTheOldOne() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let (run, first) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        #expect(first.fence == 1)
        // This process is alive: nobody else may take the run, whatever its status claims.
        let refusal = try #require(throws: OwnershipRefusal.self) {
            try store.takeOwnership(of: run.id, accepting: [.queued, .interrupted], owner: .current, why: "test")
        }
        #expect(refusal.owned && refusal.description.contains("only one runner"))
        try store.fenced(first) { try store.setRunStatus(run.id, .failed, message: "stage x failed") }
        let second = try store.takeOwnership(of: run.id, accepting: [.failed], owner: .current, why: "resume")
        #expect(second.fence == 2)
        #expect(try store.run(run.id)?.message == nil, "a stale message does not outlive the owner that wrote it")
        #expect(throws: LeaseLost.self) { try store.fenced(first) { try store.setRunStatus(run.id, .succeeded) } }
        #expect(try store.run(run.id)?.status == .queued)
        try store.fenced(second) { try store.setRunStatus(run.id, .succeeded) }
        let ended = try #require(throws: OwnershipRefusal.self) {
            try store.takeOwnership(of: run.id, accepting: [.failed, .interrupted], owner: .current, why: "resume")
        }
        #expect(!ended.owned && ended.description.contains("has ended"))
    }

    @Test func aStatusThisPipelineDoesNotKnowIsAnErrorNotAGuess() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let (run, _) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        try store.setStageStatus(run.id, "build", .running, attempt: 1)
        try store.database.execute("UPDATE stage_runs SET status = 'paused' WHERE run_id = ?", [.integer(Int64(run.id))])
        let stage = try #require(throws: DatabaseError.self) { try store.stageRuns(run.id) }
        #expect(stage.code == DatabaseError.unknownValue && stage.description.contains("'paused'"))
        try store.database.execute("UPDATE runs SET status = 'parked' WHERE id = ?", [.integer(Int64(run.id))])
        let error = try #require(throws: DatabaseError.self) { try store.run(run.id) }
        #expect(error.description.contains("run \(run.id) has RunStatus 'parked'") && error.description.contains("newer pipeline"), "\(error)")
        #expect(throws: DatabaseError.self) { try store.runs() }
    }

    @Test func gcDeletesOnlyRunsThatHaveStillEnded() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let (ended, endedLease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        let (resumed, resumedLease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "test", user: "t")
        try store.fenced(endedLease) { try store.setRunStatus(ended.id, .succeeded) }
        try store.fenced(resumedLease) { try store.setRunStatus(resumed.id, .failed) }
        // gc chose both while they had ended; one is resumed before it deletes.
        _ = try store.takeOwnership(of: resumed.id, accepting: [.failed], why: "resume")
        #expect(try store.deleteRuns([ended.id, resumed.id]) == [ended.id])
        #expect(try store.run(ended.id) == nil)
        #expect(try store.run(resumed.id)?.status == .queued)
    }

    @Test func anOwnerIsGoneOnlyWhenThatIsProvable() throws {
        let me = RunOwner.current
        let started = try #require(ProcessIdentity.started(me.pid))
        #expect(started == me.started)
        // This process: alive, whatever its lease says.
        #expect(!OwnerLiveness.isProvablyGone(host: me.host, pid: Int(me.pid), started: me.started, leaseExpiresAt: 0))
        // Its PID with another start time: the PID was reused.
        #expect(OwnerLiveness.isProvablyGone(host: me.host, pid: Int(me.pid), started: started + "0", leaseExpiresAt: nil))
        // A process that ended.
        let dead = try deadOwner()
        #expect(OwnerLiveness.isProvablyGone(host: dead.host, pid: Int(dead.pid), started: dead.started, leaseExpiresAt: nil))
        // Another host: gone only once its lease expired (it can be fenced).
        #expect(!OwnerLiveness.isProvablyGone(host: "elsewhere", pid: 1, started: "b:1", leaseExpiresAt: 200, now: 100))
        #expect(OwnerLiveness.isProvablyGone(host: "elsewhere", pid: 1, started: "b:1", leaseExpiresAt: 99, now: 100))
    }

    @Test func aStoppedProcessIsAliveAndAZombieIsNot() throws {
        let process = Process()
        process.executableURL = URL(filePath: "/bin/sleep")
        process.arguments = ["30"]
        try process.run()
        let pid = process.processIdentifier
        let started = try #require(ProcessIdentity.started(pid))
        kill(pid, SIGSTOP)
        #expect(!OwnerLiveness.isProvablyGone(host: nil, pid: Int(pid), started: started, leaseExpiresAt: 0))
        kill(pid, SIGKILL)
        process.waitUntilExit()
        #expect(OwnerLiveness.isProvablyGone(host: nil, pid: Int(pid), started: started, leaseExpiresAt: nil))
    }

    @Test func aDeployRolledBackRightAfterIsNoLongerVerified() throws {
        let home = TemporaryDirectory()
        let store = try StateStore(home: home.url)
        let key = String(repeating: "a", count: 64)
        func record(_ kind: DeploymentRecord.Kind, _ arn: String, buildKey: String? = nil) throws {
            try store.recordDeployment(DeploymentRecord(
                run: nil, environment: "staging", service: "api", kind: kind, sha: String(repeating: "1", count: 40), image: "r@sha256:" + String(repeating: "b", count: 64),
                digest: "sha256:" + String(repeating: "b", count: 64), taskDefinitionArn: arn, taskDefinition: nil, previousTaskDefinitionArn: nil,
                trigger: "cli", approvedBy: nil, buildKey: buildKey))
        }
        try record(.deploy, "arn:td:2", buildKey: key)
        #expect(try store.verifiedDeployment(service: "api", environment: "staging", buildKey: key)?.taskDefinitionArn == "arn:td:2")
        try record(.rollback, "arn:td:2")  // an automatic rollback back onto it keeps it
        #expect(try store.verifiedDeployment(service: "api", environment: "staging", buildKey: key) != nil)
        try record(.rollback, "arn:td:1")  // backed out
        #expect(try store.verifiedDeployment(service: "api", environment: "staging", buildKey: key) == nil)
        try record(.deploy, "arn:td:2", buildKey: key)  // deployed and verified again
        #expect(try store.verifiedDeployment(service: "api", environment: "staging", buildKey: key) != nil)
    }
}

/// The identity of a process that has ended.
private func deadOwner() throws -> RunOwner {
    let output = try runProcess(URL(filePath: "/bin/sh"), ["-c", "cut -d' ' -f22 /proc/$$/stat; echo $$"]).stdout
    let lines = output.split(separator: "\n").map(String.init)
    let pid = try #require(Int32(lines[1]))
    return RunOwner(host: ProcessIdentity.hostName, pid: pid, started: "\(ProcessIdentity.bootID):\(lines[0])")
}
