import Foundation
import Runner
import Testing
import TestSupport

/// Runs started by commits: a git hook fired by a real `git push` or commit, `pipeline watch`, one run per
/// environment and commit, and newest-only queues.
@Suite struct CommitTriggerTests {
    /// An origin (bare) repository and a working clone holding the pipeline, whose source is the origin.
    final class Project: @unchecked Sendable {
        let root = TemporaryDirectory("pipeline-hooks")
        var origin: URL { root.url.appending(path: "origin.git") }
        var work: URL { root.url.appending(path: "work") }
        var home: URL { root.url.appending(path: "home") }
        var ran: URL { root.url.appending(path: "ran") }

        init(queue: String = ".everyCommit", fromOrigin: Bool = true) throws {
            try git(["init", "-q", "--bare", "-b", "main", origin.path], in: root.url)
            try git(["init", "-q", "-b", "main", work.path], in: root.url)
            root.write(
                "work/pipelines/Pipeline.swift",
                """
                import PipelineDSL

                Pipeline("hooked"\(fromOrigin ? ", repository: \"\(origin.path)\"" : "")) {
                    Environment("staging", branch: "staging", region: "us-east-1", cluster: "c").onNewCommits(\(queue))
                    Environment("prod", branch: "main", region: "us-east-1", cluster: "c")
                    Checkout()
                    Shell("record", "echo $PIPELINE_ENV $PIPELINE_SHA >> \(ran.path); while [ -f \(root.url.path)/hold ]; do sleep 0.05; done")
                }
                """)
            try git(["add", "."], in: work)
            try git(["commit", "-qm", "pipelines"], in: work)
            try git(["remote", "add", "origin", origin.path], in: work)
            try git(["push", "-q", "origin", "main"], in: work)
            try git(["checkout", "-q", "-b", "staging"], in: work)
        }

        @discardableResult
        func git(_ arguments: [String], in directory: URL) throws -> String {
            let result = try runProcess(
                URL(filePath: "/usr/bin/git"), ["-c", "user.name=Test", "-c", "user.email=test@example.com"] + arguments, in: directory,
                environment: ["PIPELINE_HOME": home.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path])
            guard result.status == 0 else { throw POSIXError(.EIO) }
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func commit(_ name: String) throws -> String {
            root.write("work/\(name)", name)
            try git(["add", name], in: work)
            try git(["commit", "-qm", name], in: work)
            return try git(["rev-parse", "HEAD"], in: work)
        }

        func pipeline(_ arguments: String...) throws -> ProcessOutput {
            try runProcess(
                Project.executableURL, arguments, in: work, environment: ["PIPELINE_HOME": home.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path])
        }

        static var executableURL: URL { TestSupport.Project.executable }

        /// The runs once none of them is queued or running any more (at most 60 s).
        func settledRuns(count: Int) throws -> [RunRecord] {
            for _ in 0..<1200 {
                if FileManager.default.fileExists(atPath: home.appending(path: "state.db").path) {
                    let runs = try StateStore(home: home).runs(limit: 100)
                    if runs.count >= count && runs.allSatisfy({ $0.status.isFinal }) { return runs }
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return (try? StateStore(home: home).runs(limit: 100)) ?? []
        }

        var lines: [String] {
            ((try? String(contentsOf: ran, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    @Test func aPushToTheStagingBranchStartsExactlyOneStagingRun() throws {
        let project = try Project()
        let install = try project.pipeline("hooks", "install", "--repo", project.origin.path)
        #expect(install.status == 0 && install.stdout.contains("post-receive"), "\(install.stderr)")
        let sha = try project.commit("one")
        try project.git(["push", "-q", "origin", "staging"], in: project.work)
        let runs = try project.settledRuns(count: 1)
        #expect(runs.map(\.environment) == ["staging"] && runs.first?.sha == sha && runs.first?.trigger == "hook", "\(runs)")
        #expect(runs.first?.status == .succeeded)
        #expect(project.lines == ["staging \(sha)"])

        // The same commit again (pushed to another branch name, fired again by hand): no second run.
        let again = try project.pipeline("hooks", "fire", "staging", sha)
        #expect(again.status == 0)
        // `hooks fire` starts `pipeline run` in a session of its own; its answer reaches hooks.log when that process
        // has loaded the plan, which on a loaded machine takes longer than any fixed pause.
        let said = "already deploys \(sha.prefix(12)) to staging"
        var log = ""
        for _ in 0..<1800 where !log.contains(said) {
            Thread.sleep(forTimeInterval: 0.1)
            log = (try? String(contentsOf: project.home.appending(path: "hooks.log"), encoding: .utf8)) ?? ""
        }
        #expect(log.contains(said), "\(log)")
        #expect(try project.settledRuns(count: 1).count == 1)
    }

    @Test func aCommitInAWorkingRepositoryStartsItsRun() throws {
        // This pipeline deploys from the repository that holds it: a commit there is enough.
        let project = try Project(fromOrigin: false)
        let install = try project.pipeline("hooks", "install")
        #expect(install.status == 0 && install.stdout.contains("post-commit"), "\(install.stdout)\(install.stderr)")
        let sha = try project.commit("two")
        let runs = try project.settledRuns(count: 1)
        #expect(runs.count == 1 && runs.first?.sha == sha && runs.first?.environment == "staging", "\(runs) \(project.lines)")
    }

    @Test func watchStartsRunsForNewTipsOnly() throws {
        let project = try Project()
        let first = try project.pipeline("watch", "--once")
        #expect(first.status == 0, "\(first.stderr)")
        // main's tip is new to it: prod starts; staging has no branch in the origin yet.
        var runs = try project.settledRuns(count: 1)
        #expect(runs.map(\.environment) == ["prod"], "\(runs)\(first.stdout)\(first.stderr)")
        let sha = try project.commit("three")
        try project.git(["push", "-q", "origin", "staging"], in: project.work)
        #expect(try project.pipeline("watch", "--once").status == 0)
        runs = try project.settledRuns(count: 2)
        #expect(runs.first?.environment == "staging" && runs.first?.sha == sha && runs.first?.trigger == "watch", "\(runs)")
        #expect(try project.pipeline("watch", "--once").stdout.isEmpty)
        #expect(try project.settledRuns(count: 2).count == 2)
    }

    @Test func watchReportsABrokenPipelineAndKeepsWatching() throws {
        let project = try Project()
        let good = try String(contentsOf: project.work.appending(path: "pipelines/Pipeline.swift"), encoding: .utf8)
        project.root.write("work/pipelines/Pipeline.swift", good + "\nthis is not Swift\n")
        let watcher = Process()
        watcher.executableURL = Project.executableURL
        watcher.arguments = ["watch", "--interval", "1"]
        watcher.currentDirectoryURL = project.work
        watcher.environment = ProcessInfo.processInfo.environment.merging(
            ["PIPELINE_HOME": project.home.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path]) { _, new in new }
        let errors = Pipe()
        watcher.standardError = errors
        watcher.standardOutput = FileHandle.nullDevice
        try watcher.run()
        defer { if watcher.isRunning { watcher.terminate() } }
        Thread.sleep(forTimeInterval: 8)  // a failed compile, and the polls after it
        #expect(watcher.isRunning, "watch keeps watching after a poll fails")
        // Fixed: the next poll starts the run of main's tip.
        project.root.write("work/pipelines/Pipeline.swift", good)
        let runs = try project.settledRuns(count: 1)
        #expect(runs.map(\.environment) == ["prod"], "\(runs)")
        watcher.terminate()
        watcher.waitUntilExit()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("error:") && said.contains("this poll failed; watching on"), "\(said)")

        project.root.write("work/pipelines/Pipeline.swift", good + "\nthis is not Swift\n")
        let once = try project.pipeline("watch", "--once")
        #expect(once.status == 2, "\(once.stderr)")
    }

    @Test func withNewestOnlyTheCommitsThatQueuedUpGiveWayToTheNewest() throws {
        let project = try Project(queue: ".newestOnly")
        #expect(try project.pipeline("hooks", "install", "--repo", project.origin.path).status == 0)
        project.root.write("hold", "")
        let a = try project.commit("a")
        try project.git(["push", "-q", "origin", "staging"], in: project.work)
        #expect(RunFixture.waitFor(project.ran))
        let b = try project.commit("b")
        try project.git(["push", "-q", "origin", "staging"], in: project.work)
        let c = try project.commit("c")
        try project.git(["push", "-q", "origin", "staging"], in: project.work)
        // Both wait behind a's run before it is let go.
        for _ in 0..<600 {
            if (try? StateStore(home: project.home).runs(limit: 10).filter { $0.status == .queued }.count) == 2 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        try FileManager.default.removeItem(at: project.root.url.appending(path: "hold"))
        let runs = try project.settledRuns(count: 3)
        let bySha = Dictionary(runs.map { ($0.sha ?? "", $0) }) { first, _ in first }
        #expect(bySha[a]?.status == .succeeded)
        #expect(bySha[b]?.status == .superseded, "\(runs)")
        #expect(bySha[b]?.message?.contains("superseded by run") == true)
        #expect(bySha[c]?.status == .succeeded)
        #expect(project.lines == ["staging \(a)", "staging \(c)"])
    }
}
