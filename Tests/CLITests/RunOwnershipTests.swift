import Foundation
import Runner
import TestSupport
import Testing

/// One owner per run, with real processes: runners killed with -9, stopped with SIGSTOP, racing resumes and
/// approvals; logs that survive the runner; a full disk that fails the run instead of calling it a success.
@Suite(.serialized) struct RunOwnershipTests {
    private func store(_ home: TemporaryDirectory) throws -> StateStore { try StateStore(home: home.url) }

    private func lines(_ home: TemporaryDirectory, _ file: String) -> [String] {
        ((try? String(contentsOf: home.url.appending(path: file), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Starts `pipeline ARGS` with its output captured, for racing commands.
    private func race(_ arguments: [[String]], home: TemporaryDirectory, environment: [String: String] = [:]) throws -> [ProcessOutput] {
        let group = DispatchGroup()
        let results = LockedResults(count: arguments.count)
        for (index, command) in arguments.enumerated() {
            group.enter()
            DispatchQueue.global().async {
                results.set(index, try? RunFixture.pipeline(command, home: home, environment: environment))
                group.leave()
            }
        }
        group.wait()
        return try results.all()
    }

    @Test func racingResumesOfAKilledRunContinueItInExactlyOneRunner() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "mark"], home: home)
        // The first attempt's mark written, not only its file made (`>>` creates the file before it writes: a kill
        // in between left no "1", as a loaded CI machine showed).
        let deadline = Date().addingTimeInterval(180)
        while lines(home, "marks") != ["1"] && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(lines(home, "marks") == ["1"])
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()

        let results = try race(Array(repeating: ["resume", "1"], count: 5), home: home)
        let winners = results.filter { $0.status == 0 }
        #expect(winners.count == 1, "\(results.map { "\($0.status): \($0.stderr)" })")
        for loser in results where loser.status != 0 {
            // Refused while the winner runs (3), or after it finished (2); never a second runner.
            #expect(
                (loser.status == 3 && loser.stderr.contains("only one runner may run it"))
                    || (loser.status == 2 && loser.stderr.contains("has ended (succeeded)")),
                "\(loser.status): \(loser.stderr)")
        }
        #expect(lines(home, "marks") == ["1", "2"], "the killed attempt, then one resumed attempt")
        #expect(lines(home, "done") == ["done"], "the stage's work was done once")
        let state = try store(home)
        #expect(try state.run(1)?.status == .succeeded)
        let owners = try state.events(1).filter { $0.kind == "run.owned" }
        #expect(owners.count == 2, "\(owners.map(\.message))")
        #expect(owners.last?.message.contains("token 3") == true, "the first owner was fenced (2) when it was found gone")
        #expect(try state.database.query("PRAGMA integrity_check").first?["integrity_check"].string == "ok")
    }

    @Test func aStoppedRunnerIsAliveHoweverStaleItsLeaseAndResumeIsRefused() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "slow"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "started")))
        kill(runner.processIdentifier, SIGSTOP)
        // Longer than the lease (30 s) and than the 60 s after which a heartbeat used to count as dead.
        Thread.sleep(forTimeInterval: 62)
        let status = try RunFixture.pipeline(["status", "1"], home: home)
        #expect(status.stdout.hasPrefix("run 1  slow  running"), "\(status.stdout)")
        let resume = try RunFixture.pipeline(["resume", "1"], home: home)
        #expect(resume.status == 3, "\(resume.stdout)\(resume.stderr)")
        #expect(resume.stderr.contains("run 1 is running under pid \(runner.processIdentifier)"), "\(resume.stderr)")
        let second = try RunFixture.pipeline(["run", "slow", "--no-wait"], home: home)
        #expect(second.status == 3 && second.stderr.contains("is busy: run 1"), "\(second.stderr)")

        kill(runner.processIdentifier, SIGCONT)
        // The stopped runner goes on as the one owner: it still answers Ctrl-C and records the run itself.
        Thread.sleep(forTimeInterval: 1)
        kill(runner.processIdentifier, SIGINT)
        runner.waitUntilExit()
        #expect(runner.terminationStatus == 130)
        let state = try store(home)
        #expect(try state.run(1)?.status == .cancelled)
        #expect(try state.events(1).filter { $0.kind == "run.owned" }.count == 1)
        #expect(lines(home, "last").isEmpty)
    }

    @Test func anOwnerOnAnotherHostTakesOverAnExpiredLeaseAndTheOldOneStartsNothingMore() throws {
        // A short lease, and a second "host": a resume in a UTS namespace of its own, with another host name.
        let home = TemporaryDirectory()
        let lease = ["PIPELINE_LEASE_SECONDS": "4"]
        let runner = try RunFixture.start(["run", "pair"], home: home, environment: lease, capture: true)
        let log = home.url.appending(path: "runs/1/logs/one.log")
        for _ in 0..<1200 where !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("one 1") { Thread.sleep(forTimeInterval: 0.1) }
        kill(runner.processIdentifier, SIGSTOP)
        Thread.sleep(forTimeInterval: 6)
        // On this host the stopped owner is alive, however stale its lease: refused.
        let local = try RunFixture.pipeline(["resume", "1"], home: home, environment: lease)
        #expect(local.status == 3, "\(local.stderr)")
        // From "otherhost" only the lease can tell, and it has expired: taken over, the old owner fenced.
        let other = try runProcess(
            URL(filePath: "/usr/bin/unshare"), ["-u", "/bin/sh", "-c", "hostname otherhost && exec \"$0\" resume 1", Project.executable.path],
            in: RunFixture.folder.url,
            environment: lease.merging(["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path, "TEST_DIR": home.url.path]) { a, _ in a })
        kill(runner.processIdentifier, SIGCONT)
        runner.waitUntilExit()
        let said = String(decoding: (runner.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(other.status == 0, "\(other.stdout)\(other.stderr)")
        #expect(runner.terminationStatus == 74, "\(said)")
        #expect(said.contains("no longer owns run 1"), "\(said)")
        #expect(lines(home, "two") == ["two"], "the fenced owner started nothing: \(said)")
        let state = try store(home)
        #expect(try state.run(1)?.status == .succeeded)
        let interrupted = try #require(try state.events(1).first { $0.kind == "run.interrupted" })
        #expect(interrupted.message.contains("let its lease expire"), "\(interrupted.message)")
    }

    @Test func aCommandInAnotherPIDNamespaceOfThisHostNeverTakesALiveRunnerForGone() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "mark"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "marks")))
        // Same host name, own process list (a container on the host's network): the runner's PID is invisible there.
        let environment = ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path, "TEST_DIR": home.url.path]
        let inside = try runProcess(
            URL(filePath: "/usr/bin/unshare"), ["-p", "-f", "--mount-proc", Project.executable.path, "resume", "1"],
            in: RunFixture.folder.url, environment: environment)
        #expect(inside.status == 3, "\(inside.stdout)\(inside.stderr)")
        runner.waitUntilExit()
        #expect(runner.terminationStatus == 0)
        #expect(lines(home, "marks") == ["1"] && lines(home, "done") == ["done"])
        #expect(try store(home).events(1).filter { $0.kind == "run.interrupted" }.isEmpty)
    }

    @Test func aWaitingRunWhosePlanIsLostCanBeRejectedAndFreesItsEnvironment() throws {
        let home = TemporaryDirectory()
        let approvals = ApprovalTests()
        #expect(try approvals.pipeline("run", "prod", user: "carol", home: home).status == 4)
        try FileManager.default.removeItem(at: home.url.appending(path: "runs/1/plan.json"))
        let approve = try approvals.pipeline("approve", "prod", "--run", "1", user: "alice", home: home)
        #expect(approve.status == 74 && approve.stderr.contains("run 1's folder is damaged"), "\(approve.stderr)")
        let status = try approvals.pipeline("status", "1", user: "alice", home: home)
        #expect(status.status == 0 && status.stdout.contains("folder is damaged"), "\(status.stdout)\(status.stderr)")
        let reject = try approvals.pipeline("reject", "prod", "--run", "1", "--reason", "lost its plan", user: "alice", home: home)
        #expect(reject.status == 0, "\(reject.stdout)\(reject.stderr)")
        #expect(try store(home).run(1)?.status == .failed)
        #expect(try approvals.pipeline("run", "prod", user: "carol", home: home).status == 4, "the environment is free again")
    }

    @Test func logsAreWrittenAsTheyComeAndSurviveTheRunner() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "tick"], home: home)
        let log = home.url.appending(path: "runs/1/logs/tick.log")
        var seen = ""
        for _ in 0..<1200 where !seen.contains("out tick 3") {
            Thread.sleep(forTimeInterval: 0.1)
            seen = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        }
        #expect(seen.contains("out tick 1") && seen.contains("out tick 3"), "the log holds what the stage printed while it runs: \(seen)")

        let follower = Process()
        follower.executableURL = Project.executable
        follower.arguments = ["logs", "1", "--follow"]
        follower.currentDirectoryURL = RunFixture.folder.url
        follower.environment = ProcessInfo.processInfo.environment.merging(["PIPELINE_HOME": home.url.path]) { _, new in new }
        let output = Pipe()
        follower.standardOutput = output
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()
        let followed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        follower.waitUntilExit()
        #expect(follower.terminationStatus == 0)
        #expect(followed.contains("out tick 1") && followed.contains("out tick 5"), "\(followed)")
        let after = try String(contentsOf: log, encoding: .utf8)
        #expect(after.contains("out tick 5"), "what the console showed before kill -9 is in the log")
        #expect(try store(home).run(1)?.status == .interrupted)
    }

    @Test func aFullDiskFailsTheRunLoudlyAndReadingStillWorks() throws {
        let disk = try SmallDisk(megabytes: 2)
        defer { disk.remove() }
        let home = disk.folder("home")
        let outside = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "fill"], home: home, environment: ["OUT_DIR": outside.url.path])
        #expect(result.status == 74, "\(result.stdout)\(result.stderr)")
        let said = result.stdout + result.stderr
        #expect(said.contains("No space left on device") || said.contains("database or disk is full"), "\(said)")
        #expect(!said.contains("succeeded"), "\(said)")
        #expect(!FileManager.default.fileExists(atPath: outside.url.appending(path: "finished").path), "the stage was ended when its log filled the disk")

        // Reading works on the full disk, and says what the records say.
        let history = try RunFixture.pipeline(["history"], home: home)
        #expect(history.status == 0, "\(history.stdout)\(history.stderr)")
        #expect(history.stdout.contains("fill"))
        #expect(!history.stdout.contains("succeeded") && !history.stdout.contains("running"), "\(history.stdout)")
        let status = try RunFixture.pipeline(["status", "1"], home: home)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(try store(home).database.query("PRAGMA integrity_check").first?["integrity_check"].string == "ok")
    }

    @Test func aRunnerThatCannotRecordStopsItsStagesStartsNoOtherAndExits() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "pair"], home: home, capture: true)
        let log = home.url.appending(path: "runs/1/logs/one.log")
        for _ in 0..<1200 where !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("one 2") { Thread.sleep(forTimeInterval: 0.1) }
        let marker = try #require(try store(home).run(1)?.marker)
        // Another process holds the database's write lock for longer than half a lease plus the busy timeout.
        let holder = Process()
        holder.executableURL = URL(filePath: "/usr/bin/python3")
        holder.arguments = [
            "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)",
            home.url.appending(path: "state.db").path,
        ]
        let locked = Pipe()
        holder.standardOutput = locked
        try holder.run()
        _ = locked.fileHandleForReading.availableData
        runner.waitUntilExit()
        let said = String(decoding: (runner.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(runner.terminationStatus == 74, "\(said)")
        #expect(said.contains("could not renew this runner's lease") || said.contains("could not record"), "\(said)")
        #expect(!FileManager.default.fileExists(atPath: home.url.appending(path: "two").path), "no stage starts unrecorded: \(said)")
        #expect(RunFixture.processes(withMarker: marker).isEmpty, "its stage was ended")
        holder.terminate()
        holder.waitUntilExit()
        let status = try RunFixture.pipeline(["status", "1"], home: home)
        #expect(!status.stdout.hasPrefix("run 1  pair  succeeded") && !status.stdout.hasPrefix("run 1  pair  running"), "\(status.stdout)")
    }

    @Test func aReaderThatGoesAwayDoesNotKillTheRun() throws {
        let home = TemporaryDirectory()
        let piped = try runProcess(
            URL(filePath: "/bin/sh"), ["-c", "\"$0\" run mark | head -1", Project.executable.path], in: RunFixture.folder.url,
            environment: ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path, "TEST_DIR": home.url.path])
        #expect(piped.stdout.split(separator: "\n").count == 1)
        #expect(try store(home).run(1)?.status == .succeeded, "\(piped.stderr)")
        #expect(lines(home, "done") == ["done"])
    }

    @Test func aCompileCacheThatCannotBeWrittenIsNotABadPipelineAndLeavesNothingHalfWritten() throws {
        let disk = try SmallDisk(megabytes: 1)
        defer { disk.remove() }
        let home = TemporaryDirectory()
        let cache = disk.url.appending(path: "cache")
        let result = try runProcess(
            Project.executable, ["plan", "basic"], in: RunFixture.folder.url,
            environment: ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": cache.path])
        #expect(result.status == 74, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("could not be written"), "\(result.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
        #expect(left.filter { $0 != "compilers" }.isEmpty, "left behind: \(left)")
    }

    @Test func anApprovalRacingResumesContinuesTheRunOnce() throws {
        let home = TemporaryDirectory()
        let approvals = ApprovalTests()
        #expect(try approvals.pipeline("run", "prod", user: "carol", home: home).status == 4)
        let environment = approvals.environment(home, user: "alice")
        let results = try race([["approve", "prod", "--run", "1"], ["resume", "1"], ["resume", "1"]], home: home, environment: environment)
        #expect(results[0].status == 0, "\(results[0].stdout)\(results[0].stderr)")
        for resume in results.dropFirst() {
            #expect(resume.status == 2 || resume.status == 3, "\(resume.status): \(resume.stderr)")
        }
        #expect(approvals.ran(home) == ["before", "after"])
        let state = try store(home)
        #expect(try state.run(1)?.status == .succeeded)
        #expect(try state.events(1).filter { $0.kind == "approval.released" }.count == 1)
        #expect(try state.events(1).filter { $0.kind == "run.owned" }.count == 2)

        // Too late: told who approved, not that the run is "interrupted".
        let late = try approvals.pipeline("approve", "prod", "--run", "1", user: "bob", home: home)
        #expect(late.status == 2 && late.stderr.contains("run 1 of prod was already approved by alice"), "\(late.stderr)")
        let lateWithoutRun = try approvals.pipeline("approve", "prod", user: "bob", home: home)
        #expect(lateWithoutRun.status == 2 && lateWithoutRun.stderr.contains("was already approved by alice"), "\(lateWithoutRun.stderr)")
    }

    @Test func theGateSaysHowManyApprovalsAreStillNeeded() throws {
        let home = TemporaryDirectory()
        let approvals = ApprovalTests()
        #expect(try approvals.pipeline("run", "pair", user: "carol", home: home).status == 4)
        #expect(try approvals.pipeline("approve", "pair", user: "alice", home: home).status == 0)
        let status = try approvals.pipeline("status", "1", user: "carol", home: home)
        #expect(status.stdout.contains("waiting for 1 more approval; approved by alice"), "\(status.stdout)")
        #expect(!status.stdout.contains("2 more"), "\(status.stdout)")
    }

    @Test func anInterruptedRunShowsEveryStageAndAResumedOneItsTime() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "slow"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "started")))
        Thread.sleep(forTimeInterval: 1.2)
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()
        let status = try RunFixture.pipeline(["status", "1"], home: home)
        #expect(status.stdout.contains("last   pending"), "stages that never started are listed: \(status.stdout)")
        FileManager.default.createFile(atPath: home.url.appending(path: "go").path, contents: nil)
        let resumed = try RunFixture.pipeline(["resume", "1"], home: home)
        #expect(resumed.status == 0)
        // The summary counts the time the slow stage ran before its runner died, not only its last, instant attempt.
        let slowRow = try #require(resumed.stdout.split(separator: "\n").first { $0.hasPrefix("slow ") })
        #expect(!slowRow.contains(" 0.0s"), "\(slowRow)")
        let history = try RunFixture.pipeline(["history", "slow"], home: home)
        #expect(!history.stdout.contains("runner"), "no stale message about the runner that stopped: \(history.stdout)")
    }

    @Test func unknownNamesAreRefusedAndOnlyTakesSeveralServices() throws {
        let home = TemporaryDirectory()
        // A status written by a newer pipeline: said, exit 2, not taken for "failed" and not an internal error.
        #expect(try RunFixture.pipeline(["run", "chains", "--only", "beta"], home: home).status == 0)
        try store(home).database.execute("UPDATE runs SET status = 'parked' WHERE id = 1")
        let newer = try RunFixture.pipeline(["history"], home: home)
        #expect(newer.status == 2 && newer.stderr.contains("RunStatus 'parked'"), "\(newer.stdout)\(newer.stderr)")
        try store(home).database.execute("UPDATE runs SET status = 'succeeded' WHERE id = 1")
        let history = try RunFixture.pipeline(["history", "nosuchenv"], home: home)
        #expect(history.status == 2 && history.stderr.contains("unknown environment 'nosuchenv'"), "\(history.stderr)")
        let deployments = try RunFixture.pipeline(["deployments", "nosuch"], home: home)
        #expect(deployments.status == 2 && deployments.stderr.contains("unknown service 'nosuch'"), "\(deployments.stderr)")
        let known = try RunFixture.pipeline(["deployments", "alpha"], home: home)
        #expect(known.status == 0 && known.stdout.contains("no deployments of alpha"), "\(known.stderr)")
        let rollback = try RunFixture.pipeline(["rollback", "no-such-service", "--yes"], home: home)
        #expect(rollback.status == 2 && rollback.stderr.contains("unknown service 'no-such-service'"), "\(rollback.stderr)")
        let only = try RunFixture.pipeline(["run", "chains", "--only", "alpha", "beta", "--dry-run"], home: home)
        #expect(only.status == 0 && only.stdout.contains("alpha.one, beta.one"), "\(only.stdout)\(only.stderr)")
    }
}

/// A tmpfs of a few megabytes, to fill.
struct SmallDisk {
    let url: URL

    init(megabytes: Int) throws {
        url = FileManager.default.temporaryDirectory.appending(path: "pipeline-small-disk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let mounted = try runProcess(URL(filePath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", url.path])
        guard mounted.status == 0 else {
            throw NSError(domain: "mount", code: Int(mounted.status), userInfo: [NSLocalizedDescriptionKey: "mounting a tmpfs (as root) failed: \(mounted.stderr)"])
        }
    }

    /// A folder on the disk, as the tests' temporary folders are.
    func folder(_ name: String) -> TemporaryDirectory {
        let folder = TemporaryDirectory(url: url.appending(path: name))
        return folder
    }

    func remove() {
        _ = try? runProcess(URL(filePath: "/bin/umount"), ["-l", url.path])
        try? FileManager.default.removeItem(at: url)
    }
}

/// Results filled in from several threads.
final class LockedResults: @unchecked Sendable {  // every access holds `lock`
    private let lock = NSLock()
    private var values: [ProcessOutput?]

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: ProcessOutput?) { lock.withLock { values[index] = value } }

    func all() throws -> [ProcessOutput] {
        try lock.withLock { try values.map { try #require($0) } }
    }
}
