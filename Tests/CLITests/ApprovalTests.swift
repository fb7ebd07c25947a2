import Foundation
import Runner
import Testing
import TestSupport

/// Approval gates through the CLI: people are told apart by TEST_USER (the gates' identity variable).
@Suite struct ApprovalTests {
    static let project: TemporaryDirectory = {
        let folder = TemporaryDirectory("pipeline-approval-fixture")
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("approvals") {
                Environment("prod", branch: "main", region: "us-east-1", cluster: "c")
                Environment("pair", branch: "main", region: "us-east-1", cluster: "c")
                Environment("quick", branch: "main", region: "us-east-1", cluster: "c")
                Shell("before", "echo before >> $TEST_DIR/ran")
                Approval("release", approvers: ["alice", "bob"], message: "Ship {env}?", identityVariable: "TEST_USER")
                    .when(.environment("prod"))
                Approval("release", approvers: ["alice", "bob", "carol"], required: 2, identityVariable: "TEST_USER")
                    .when(.environment("pair"))
                Approval("release", approvers: ["alice"], timeout: .seconds(1), identityVariable: "TEST_USER")
                    .when(.environment("quick"))
                Shell("after", "echo after >> $TEST_DIR/ran")
            }
            """)
        return folder
    }()

    func environment(_ home: TemporaryDirectory, user: String) -> [String: String] {
        ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path, "TEST_DIR": home.url.path, "TEST_USER": user]
    }

    /// `pipeline ARGS` started and left running, as `user`.
    func start(_ arguments: [String], user: String, home: TemporaryDirectory) throws -> Process {
        let process = Process()
        process.executableURL = Project.executable
        process.arguments = arguments
        process.currentDirectoryURL = Self.project.url
        process.environment = ProcessInfo.processInfo.environment.merging(environment(home, user: user)) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// `pipeline run prod --wait` started by carol, once its run has reached the gate.
    func waitingInTheForeground(_ home: TemporaryDirectory) throws -> Process {
        let process = try start(["run", "prod", "--wait"], user: "carol", home: home)
        var asked = false
        for _ in 0..<1200 where !asked {
            asked = (try? StateStore(home: home.url).approvals(run: 1, stage: "release").isEmpty == false) ?? false
            if !asked { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(asked)
        return process
    }

    func pipeline(_ arguments: String..., user: String, home: TemporaryDirectory) throws -> ProcessOutput {
        try runProcess(Project.executable, arguments, in: Self.project.url, environment: environment(home, user: user))
    }

    func ran(_ home: TemporaryDirectory) -> [String] {
        ((try? String(contentsOf: home.url.appending(path: "ran"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func aRunWaitsAtTheGateUntilAnAllowedPersonApproves() throws {
        let home = TemporaryDirectory()
        let started = try pipeline("run", "prod", user: "carol", home: home)
        #expect(started.status == 4, "\(started.stdout)\(started.stderr)")
        #expect(started.stdout.contains("run 1 waits for approval at release: Ship prod?"), "\(started.stdout)")
        #expect(started.stdout.contains("needs 1 of: alice, bob (not carol, who started it)"))
        #expect(started.stdout.contains("pipeline approve prod --run 1"))
        #expect(ran(home) == ["before"])

        // No process holds it, yet it keeps waiting (as after a restart), and holds the environment.
        let status = try pipeline("status", "1", user: "carol", home: home)
        #expect(status.stdout.contains("run 1  prod  waiting") && status.stdout.contains("what the gate lets through"), "\(status.stdout)")
        let second = try pipeline("run", "prod", user: "carol", home: home)
        #expect(second.status == 3 && second.stderr.contains("held by run 1"), "\(second.stderr)")

        let stranger = try pipeline("approve", "prod", user: "mallory", home: home)
        #expect(stranger.status == 2 && stranger.stderr.contains("mallory may not approve release of run 1; its approvers are alice, bob"))
        let approved = try pipeline("approve", "prod", "--comment", "ship it", user: "alice", home: home)
        #expect(approved.status == 0, "\(approved.stdout)\(approved.stderr)")
        #expect(approved.stdout.contains("run 1 approved by alice; continuing from release"))
        #expect(approved.stdout.contains("run 1 succeeded"), "\(approved.stdout)")
        #expect(ran(home) == ["before", "after"])

        let decisions = try StateStore(home: home.url).approvals(run: 1, stage: "release")
        #expect(decisions.map(\.decision) == [.requested, .approved])
        #expect(decisions.map(\.user) == ["carol", "alice"])
        #expect(decisions.last?.comment == "ship it")
        let late = try pipeline("approve", "prod", "--run", "1", user: "bob", home: home)
        #expect(late.status == 2 && late.stderr.contains("run 1 of prod was already approved by alice (it is succeeded now)"), "\(late.stderr)")
    }

    @Test func selfApprovalIsRefusedAndTwoDistinctApprovalsAreNeeded() throws {
        let home = TemporaryDirectory()
        #expect(try pipeline("run", "pair", user: "alice", home: home).status == 4)
        let own = try pipeline("approve", "pair", user: "alice", home: home)
        #expect(own.status == 2 && own.stderr.contains("alice started run 1 and may not approve it"), "\(own.stderr)")
        let first = try pipeline("approve", "pair", user: "bob", home: home)
        #expect(first.stdout.contains("1 of 2 approvals for run 1; waiting for 1 more"), "\(first.stdout)")
        let twice = try pipeline("approve", "pair", user: "bob", home: home)
        #expect(twice.status == 0 && twice.stdout.contains("counts once (1 of 2)"))
        #expect(ran(home) == ["before"])
        let second = try pipeline("approve", "pair", user: "carol", home: home)
        #expect(second.status == 0 && second.stdout.contains("approved by bob, carol"), "\(second.stdout)")
        #expect(ran(home) == ["before", "after"])
    }

    @Test func aRejectedRunEndsAndCannotBeApprovedAfter() throws {
        let home = TemporaryDirectory()
        #expect(try pipeline("run", "prod", user: "carol", home: home).status == 4)
        let rejected = try pipeline("reject", "prod", "--reason", "not during the sale", user: "bob", home: home)
        #expect(rejected.status == 0 && rejected.stdout.contains("run 1 rejected by bob: not during the sale"))
        let after = try pipeline("approve", "prod", "--run", "1", user: "alice", home: home)
        #expect(after.status == 2 && after.stderr.contains("does not wait for approval: it is failed (rejected at release by bob: not during the sale)"), "\(after.stderr)")
        #expect(ran(home) == ["before"])
        // The environment is free again.
        #expect(try pipeline("run", "prod", user: "carol", home: home).status == 4)
    }

    @Test func aGateThatTimesOutExpiresTheRun() throws {
        let home = TemporaryDirectory()
        #expect(try pipeline("run", "quick", user: "carol", home: home).status == 4)
        Thread.sleep(forTimeInterval: 1.5)
        let late = try pipeline("approve", "quick", user: "alice", home: home)
        #expect(late.status == 2 && late.stderr.contains("no run of quick waits for approval; its latest run, 1, is failed: expired at release"), "\(late.stderr)")
        let decisions = try StateStore(home: home.url).approvals(run: 1, stage: "release")
        #expect(decisions.map(\.decision) == [.requested, .expired])
        #expect(ran(home) == ["before"])
    }

    @Test func aRunCancelledWhileWaitingCannotBeApproved() throws {
        let home = TemporaryDirectory()
        let waiting = try waitingInTheForeground(home)
        kill(waiting.processIdentifier, SIGINT)
        waiting.waitUntilExit()
        #expect(waiting.terminationStatus == 130)
        let late = try pipeline("approve", "prod", "--run", "1", user: "alice", home: home)
        #expect(late.status == 2 && late.stderr.contains("run 1 does not wait for approval: it is cancelled"), "\(late.stderr)")
        #expect(ran(home) == ["before"])
    }

    @Test func racingApprovalsMoveTheRunOnExactlyOnce() throws {
        let home = TemporaryDirectory()
        #expect(try pipeline("run", "prod", user: "carol", home: home).status == 4)
        let racers = try ["alice", "bob"].map { try start(["approve", "prod", "--run", "1"], user: $0, home: home) }
        for racer in racers { racer.waitUntilExit() }
        #expect(racers.map(\.terminationStatus).sorted() == [0, 2] || racers.map(\.terminationStatus) == [0, 0])
        #expect(ran(home) == ["before", "after"])
        let events = try StateStore(home: home.url).events(1).filter { $0.kind == "approval.released" }
        #expect(events.count == 1)
    }

    @Test func waitKeepsTheRunInTheForegroundAndDetachContinuesInTheBackground() throws {
        let home = TemporaryDirectory()
        let foreground = try waitingInTheForeground(home)
        // The foreground run reads the records: an approval from elsewhere lets it go on.
        var approve = try pipeline("approve", "prod", user: "alice", home: home)
        #expect(approve.status == 0 && approve.stdout.contains("it continues in the process that waits for it"), "\(approve.stdout)\(approve.stderr)")
        foreground.waitUntilExit()
        #expect(foreground.terminationStatus == 0)
        #expect(ran(home) == ["before", "after"])

        let other = TemporaryDirectory()
        #expect(try pipeline("run", "prod", user: "carol", home: other).status == 4)
        approve = try pipeline("approve", "prod", "--detach", user: "bob", home: other)
        #expect(approve.status == 0 && approve.stdout.contains("continues in the background"), "\(approve.stdout)")
        #expect(RunFixture.waitFor(other.url.appending(path: "ran"), seconds: 180))
        var finished = false
        for _ in 0..<600 where !finished {
            finished = try StateStore(home: other.url).run(1)?.status == .succeeded
            if !finished { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(finished)
        #expect(ran(other) == ["before", "after"])
    }
}
