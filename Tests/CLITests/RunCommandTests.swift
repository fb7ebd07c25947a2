import Foundation
import Runner
import TestSupport
import Testing

private func store(_ home: TemporaryDirectory) throws -> StateStore { try StateStore(home: home.url) }

/// `pipeline run` on real child processes. Serialized: the machine has two cores, and timing matters here.
@Suite(.serialized) struct RunCommandTests {
    @Test func stagesRunInOrderPassOutputsAndAFailureSkipsWhatDependsOnIt() throws {
        let home = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "basic"], home: home)
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("[hello] hello from hello of run 1"))
        #expect(result.stdout.contains("[reader] saw 42"))
        #expect(result.stdout.contains("✘ broken failed"))
        #expect(result.stdout.contains("exited with status 3: it broke"))
        #expect(result.stdout.contains("↷ after skipped: broken did not succeed"))
        #expect(result.stdout.contains("run 1 failed"))

        let state = try store(home)
        let stages = Dictionary(uniqueKeysWithValues: try state.stageRuns(1).map { ($0.stageID, $0) })
        #expect(stages["hello"]?.status == .succeeded)
        #expect(stages["broken"]?.exitCode == 3)
        #expect(stages["after"]?.status == .skipped)
        #expect(try state.run(1)?.status == .failed)

        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/hello.log"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.contains { $0.hasSuffix(" out hello from hello of run 1") && $0.first?.isNumber == true })
        #expect(lines.contains { $0.hasSuffix(" err to-stderr") })
        let plan = home.url.appending(path: "runs/1/plan.json")
        #expect(FileManager.default.fileExists(atPath: plan.path))
        let outputs = try String(contentsOf: home.url.appending(path: "runs/1/outputs/hello.json"), encoding: .utf8)
        #expect(outputs.contains("\"answer\" : \"42\""))
    }

    @Test func independentChainsFinishWhenAnotherFails() throws {
        let home = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "chains"], home: home)
        #expect(result.status == 1)
        let stages = Dictionary(uniqueKeysWithValues: try store(home).stageRuns(1).map { ($0.stageID, $0.status) })
        #expect(stages == ["alpha.one": .failed, "alpha.two": .skipped, "beta.one": .succeeded, "beta.two": .succeeded])

        let fast = TemporaryDirectory()
        let stopped = try RunFixture.pipeline(["run", "chains", "--fail-fast", "--parallel", "1"], home: fast)
        #expect(stopped.status == 1)
        let states = Dictionary(uniqueKeysWithValues: try store(fast).stageRuns(1).map { ($0.stageID, $0.status) })
        #expect(states["beta.two"] == .skipped)
    }

    @Test func onlyDryRunAndJSON() throws {
        let home = TemporaryDirectory()
        let dry = try RunFixture.pipeline(["run", "chains", "--dry-run"], home: home)
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("1. alpha.one, beta.one\n2. alpha.two, beta.two"))
        #expect(try store(home).runs().isEmpty)

        let only = try RunFixture.pipeline(["run", "chains", "--only", "beta", "--json"], home: home)
        #expect(only.status == 0, "\(only.stderr)")
        let events = try only.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(events.first?["event"] as? String == "run.started")
        #expect(events.last?["status"] as? String == "succeeded")
        let started = events.filter { $0["event"] as? String == "stage.started" }.compactMap { $0["stage"] as? String }
        #expect(started == ["beta.one", "beta.two"])

        let unknown = try RunFixture.pipeline(["run", "chains", "--only", "gamma"], home: home)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("--only names unknown service gamma"))
        let both = try RunFixture.pipeline(["run", "chains", "--sha", "abc", "--ref", "main"], home: home)
        #expect(both.status == 2)
    }

    @Test func aFailedAttemptIsRetried() throws {
        let home = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "retry"], home: home)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("retrying"))
        let stage = try #require(try store(home).stageRuns(1).first)
        #expect(stage.status == .succeeded)
        #expect(stage.attempts == 2)
        let log = try String(contentsOf: home.url.appending(path: "runs/1/logs/flaky.log"), encoding: .utf8)
        #expect(log.contains("--- attempt 1 of flaky") && log.contains("--- attempt 2 of flaky"))
    }

    @Test func aStageThatSaysRetryingCannotHelpIsNotRetried() throws {
        let home = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "hopeless"], home: home)
        #expect(result.status == 1, "\(result.stdout)")
        #expect(!result.stdout.contains("retrying"), "\(result.stdout)")
        let stage = try #require(try store(home).stageRuns(1).first)
        #expect(stage.status == .failed && stage.attempts == 1 && stage.exitCode == 65, "\(stage)")
    }

    @Test func aStageThatIgnoresSIGTERMIsKilledAtItsTimeout() throws {
        let home = TemporaryDirectory()
        let result = try RunFixture.pipeline(["run", "timeout", "--kill-grace", "1"], home: home)
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: home.url.appending(path: "survived").path))
        let stage = try #require(try store(home).stageRuns(1).first)
        #expect(stage.status == .timedOut)
        #expect(stage.message == "timed out after 1s")
        let run = try #require(try store(home).run(1))
        #expect(RunFixture.processes(withMarker: run.marker).isEmpty)
    }

    @Test func floodingOutputIsStreamedToTheLogWithoutGrowingTheRunner() throws {
        let home = TemporaryDirectory()
        let bytes = 200_000_000
        let timed = try runProcess(
            URL(filePath: "/usr/bin/time"), ["-f", "%M", Project.executable.path, "run", "flood"], in: RunFixture.folder.url,
            environment: [
                "PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path,
                "FLOOD_BYTES": String(bytes),
            ])
        #expect(timed.status == 0, "\(timed.stderr)")
        let peakKiB = try #require(Int(timed.stderr.split(separator: "\n").last ?? ""))
        #expect(peakKiB < 96 * 1024, "peak RSS \(peakKiB) KiB")
        let log = home.url.appending(path: "runs/1/logs/flood.log")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int)
        let lines = bytes / 99 + 1
        #expect(size > bytes + lines * 28, "each of the \(lines) lines has a timestamp and stream")
    }

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func ctrlCOrSIGTERMStopsEveryProcessOfTheRunAndRecordsItCancelled(signal: Int32) throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "slow", "--kill-grace", "1"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "started")))
        let run = try #require(try store(home).run(1))
        // The run's other processes start beside the one that wrote `started`: under load, a moment later.
        var running = RunFixture.processes(withMarker: run.marker).count
        for _ in 0..<1200 where running < 3 {
            Thread.sleep(forTimeInterval: 0.05)
            running = RunFixture.processes(withMarker: run.marker).count
        }
        #expect(running >= 3)
        kill(runner.processIdentifier, signal)
        runner.waitUntilExit()
        #expect(runner.terminationStatus == 130)
        #expect(try store(home).run(1)?.status == .cancelled)
        #expect(RunFixture.processes(withMarker: run.marker).isEmpty)
        let stages = Dictionary(uniqueKeysWithValues: try store(home).stageRuns(1).map { ($0.stageID, $0.status) })
        #expect(stages["slow"] == .cancelled)
        #expect(stages["last"] == .cancelled)
    }

    @Test func aRunnerKilledMidRunIsInterruptedAndResumeSkipsWhatSucceeded() throws {
        let home = TemporaryDirectory()
        let runner = try RunFixture.start(["run", "slow"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "started")))
        let marker = try #require(try store(home).run(1)?.marker)
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()

        let status = try RunFixture.pipeline(["status"], home: home)
        #expect(status.stdout.hasPrefix("run 1  slow  interrupted"), "\(status.stdout)")
        #expect(status.stdout.contains("pipeline resume 1"))
        #expect(RunFixture.processes(withMarker: marker).isEmpty, "the killed runner's stage processes are ended")
        #expect(try store(home).database.query("PRAGMA integrity_check").first?["integrity_check"].string == "ok")

        FileManager.default.createFile(atPath: home.url.appending(path: "go").path, contents: nil)
        let resumed = try RunFixture.pipeline(["resume", "1"], home: home)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(try String(contentsOf: home.url.appending(path: "first"), encoding: .utf8) == "ran\n")
        let stages = Dictionary(uniqueKeysWithValues: try store(home).stageRuns(1).map { ($0.stageID, $0) })
        #expect(stages["first"]?.attempts == 1)
        #expect(stages["slow"]?.attempts == 2)
        #expect(stages["last"]?.status == .succeeded)
        #expect(try store(home).run(1)?.status == .succeeded)
        let again = try RunFixture.pipeline(["resume", "1"], home: home)
        #expect(again.status == 2)
        #expect(again.stderr.contains("run 1 has ended (succeeded); there is nothing to continue"), "\(again.stderr)")
    }

    @Test func twoRunsOfOneEnvironmentTakeTurns() throws {
        let home = TemporaryDirectory()
        _ = try RunFixture.pipeline(["plan", "race"], home: home)  // compile before the race
        let first = try RunFixture.start(["run", "race"], home: home)
        #expect(RunFixture.waitFor(home.url.appending(path: "order")))
        let refused = try RunFixture.pipeline(["run", "race", "--no-wait"], home: home)
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("environment 'race' is busy: run 1"))
        // Run 1's stage holds on until `release` exists; it is made once run 2 says it waits (or run 2 ends).
        let second = try RunFixture.start(["run", "race"], home: home, capture: true)
        let output = try #require(second.standardOutput as? Pipe).fileHandleForReading
        var said = Data()
        while !String(decoding: said, as: UTF8.self).contains("waiting for run 1") {
            let chunk = output.availableData
            if chunk.isEmpty { break }
            said += chunk
        }
        _ = home.write("release", "")
        said += output.readDataToEndOfFile()
        second.waitUntilExit()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(second.terminationStatus == 0)
        #expect(String(decoding: said, as: UTF8.self).contains("waiting for run 1"), "\(String(decoding: said, as: UTF8.self))")
        let order = try String(contentsOf: home.url.appending(path: "order"), encoding: .utf8)
        #expect(order == "start 1\nend 1\nstart 2\nend 2\n")
    }

    @Test func secretsInEveryFormAreFoundNowhereOnDisk() throws {
        let home = TemporaryDirectory()
        let secret = "pa55-w0rd/with+odd \"chars\""
        let key = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END TEST KEY-----"
        home.write(
            "leak.py",
            """
            import base64, json, os, sys, urllib.parse
            token, key = os.environ["TOKEN"], os.environ["KEY"]
            print("raw", token)
            sys.stdout.write("split "); sys.stdout.flush(); sys.stdout.write(token[:5]); sys.stdout.flush()
            sys.stdout.write(token[5:] + "\\n"); sys.stdout.flush()
            for prefix in ["", "a", "ab"]:
                print("b64", base64.b64encode((prefix + token + "!").encode()).decode())
            print("json", json.dumps({"token": token}))
            print("url", urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token))
            print("key line", key.splitlines()[1])
            print(key, file=sys.stderr)
            open(os.environ["PIPELINE_OUTPUTS"], "a").write("leaked=" + token + "\\n")
            open(os.path.join(os.environ["PIPELINE_ARTIFACTS"], "report.txt"), "w").write("report " + token)
            for pid in [os.getpid(), os.getppid()]:
                if token.encode() in open(f"/proc/{pid}/cmdline", "rb").read(): print("SECRET ON A COMMAND LINE")
            print("failing with", token, file=sys.stderr)
            sys.exit(1)
            """)
        let result = try RunFixture.pipeline(
            ["run", "secrets"], home: home, environment: ["TEST_SECRET": secret, "TEST_KEY": key])
        #expect(result.status == 1)
        #expect(result.stdout.contains("[leak] raw ***"))
        #expect(result.stdout.contains("failing with ***"))
        #expect(!result.stdout.contains("SECRET ON A COMMAND LINE"))

        var forms = [secret, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "pa55-w0rd%2Fwith", "pa55-w0rd/with+odd \\\"chars"]
        for prefix in ["", "a", "ab"] {
            let encoded = Data((prefix + secret + "!").utf8).base64EncodedString()
            forms.append(String(encoded.dropFirst(4).prefix(16)))
        }
        let files = FileManager.default.enumerator(atPath: home.url.path)!.compactMap { $0 as? String }
        var scanned: [String] = []
        for file in files {
            let path = home.url.appending(path: file).path
            guard file != "leak.py", let data = FileManager.default.contents(atPath: path) else { continue }
            scanned.append(file)
            let text = String(decoding: data, as: UTF8.self)
            for form in forms { #expect(!text.contains(form), "\(file) contains \(form)") }
        }
        for file in ["state.db", "runs/1/logs/leak.log", "runs/1/outputs/leak.env", "runs/1/artifacts/leak/report.txt"] {
            #expect(scanned.contains(file), "\(file) was scanned")
        }
        #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret))
        let report = try String(contentsOf: home.url.appending(path: "runs/1/artifacts/leak/report.txt"), encoding: .utf8)
        #expect(report == "report ***")
    }

    @Test func statusHistoryLogsAndGC() throws {
        let home = TemporaryDirectory()
        for _ in 0..<3 { _ = try RunFixture.pipeline(["run", "chains", "--only", "beta"], home: home) }
        let history = try RunFixture.pipeline(["history", "chains", "--limit", "2"], home: home)
        #expect(history.stdout.split(separator: "\n").count == 3)
        #expect(history.stdout.contains("3    chains  succeeded"))
        let status = try RunFixture.pipeline(["status", "2"], home: home)
        #expect(status.stdout.hasPrefix("run 2  chains  succeeded"))
        #expect(status.stdout.contains("beta.two  succeeded  1"))
        let logs = try RunFixture.pipeline(["logs", "2", "--stage", "beta.one"], home: home)
        #expect(logs.stdout.contains(" out one of beta"))
        let missing = try RunFixture.pipeline(["logs", "9"], home: home)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("there is no run 9; the latest is run 3"))
        let gc = try RunFixture.pipeline(["gc", "--keep", "1"], home: home)
        #expect(gc.stdout == "deleted 2 runs: 2, 1\n")
        #expect(!FileManager.default.fileExists(atPath: home.url.appending(path: "runs/1").path))
        #expect(try store(home).runs().map(\.id) == [3])
    }

    @Test func onATerminalALiveStatusLineShowsWhatRunsAndWaits() throws {
        let home = TemporaryDirectory()
        let command = "\(Project.executable.path) run slow --kill-grace 1"
        let script = try RunFixture.start(["-qfec", command, "/dev/null"], home: home, executable: URL(filePath: "/usr/bin/script"), capture: true)
        #expect(RunFixture.waitFor(home.url.appending(path: "started")))
        Thread.sleep(forTimeInterval: 1.5)
        kill(Int32(try #require(try store(home).run(1)?.pid)), SIGINT)
        script.waitUntilExit()
        let screen = String(decoding: (script.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(screen.contains("\u{1B}[K"))
        #expect(screen.contains("running: slow "))
        #expect(screen.contains("waiting: 1"))
        #expect(screen.contains("[slow] started"))
    }

    @Test func theReferencePlanChecksOutThenSaysWhyTheBuildCannotRun() throws {
        let home = TemporaryDirectory()
        // This repository holds the reference pipelines, not the platform's services: the checkout works, the
        // build finds no services/user-service and says what to check. (Staging: prod takes only what staging
        // verified, and refuses before it starts.)
        let head = try runProcess(URL(filePath: "/usr/bin/git"), ["rev-parse", "HEAD"], in: Project.root).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try runProcess(
            Project.executable, ["run", "staging", "--sha", head, "--only", "user-service"], in: Project.root,
            environment: ["PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("[checkout] checked out "))
        #expect(FileManager.default.fileExists(atPath: home.url.appending(path: "runs/1/workspace/pipelines/Pipeline.swift").path))
        #expect(result.stdout.contains("[user-service.build] error: building the image of user-service: the commit \(head.prefix(12)) has no services/user-service to build user-service from; check the service's build context"), "\(result.stdout)")
        #expect(result.stdout.contains("↷ user-service.push skipped: user-service.build did not succeed"))
        #expect(result.stdout.contains("run 1 failed"))
    }
}
