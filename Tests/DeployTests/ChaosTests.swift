import AWS
import Foundation
import Runner
import Testing
import TestSupport

/// A staging deploy (checkout, build, push, register, deploy, health check) whose runners are killed with -9,
/// stopped and continued, and resumed by several racing commands at random points, for a bounded number of
/// rounds (PIPELINE_CHAOS_ROUNDS, default 4; PIPELINE_CHAOS_SEED repeats a sequence). After each round it checks in
/// moto and the state store: at most one runner acted per run, every attempt was made once, the service runs the
/// revision the records say, no record is duplicated, the database is intact. It prints what it did and found.
@Suite(.serialized) struct ChaosTests {
    static let aws = LocalAWS.dedicated()

    @Test func killingStoppingAndResumingRunnersNeverLetsTwoActOrLeavesAServiceUnexplained() async throws {
        let environment = ProcessInfo.processInfo.environment
        let rounds = Int(environment["PIPELINE_CHAOS_ROUNDS"] ?? "") ?? 4
        var random = SeededRandom(seed: UInt64(environment["PIPELINE_CHAOS_SEED"] ?? "") ?? UInt64(Date().timeIntervalSince1970))
        print("chaos: seed \(random.seed), \(rounds) rounds")
        let project = try DeployProject(
            service: "notification-service", ecsService: "notification-service-staging", repository: "sv-notify", port: 5002, grpc: false,
            aws: Self.aws)
        _ = try project.commit("base")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let store = try StateStore(home: project.home.url)
        var findings: [String] = []

        for round in 1...rounds {
            let healthy = round % 2 == 1
            let sha = try project.commit("round \(round)", health: healthy ? "healthy" : "failing", looks: 15)
            let before = try await project.live()
            let runID = (try store.runs(limit: 1).first?.id ?? 0) + 1
            var runner: Process? = try project.start("run", "staging")
            // The chaos is about a run under way: it starts once the run is recorded (a kill before that leaves
            // nothing to resume, which is not what this test is about; under load it can take a while).
            for _ in 0..<600 where try store.run(runID) == nil { pause(0.05) }
            var acts: [String] = []
            var winners = 0
            while acts.count < 8 {
                pause(random.uniform(0.2, 1.5))
                if let status = try store.run(runID)?.status, status.isFinal && status != .interrupted { break }
                // Two in five: kill -9 and racing resumes; two in five: SIGSTOP; one in five: let it work a while.
                let act = [0, 0, 1, 1, 2][random.below(5)]
                if let current = runner, current.isRunning, act == 1 {
                    // SIGSTOP: the stopped runner is alive; a resume meanwhile must be refused.
                    // Stopped, asked and continued on a thread of its own: the SIGCONT must never wait for a thread of the
                    // concurrency pool (a pool thread reading a pipe the stopped runner inherited would wait for it).
                    let pid = current.processIdentifier, pausing = random.uniform(0.2, 1.5), repo = project.repo, variables = project.environment
                    let refused = try await onOwnThread {
                        kill(pid, SIGSTOP)
                        defer { kill(pid, SIGCONT) }
                        let answer = try runProcess(Project.executable, ["resume", String(runID)], in: repo, environment: variables)
                        pause(pausing)
                        return answer
                    }
                    acts.append("stop/cont (resume meanwhile: exit \(refused.status))")
                    #expect(refused.status == 3 || refused.status == 2, "a resume while the owner was stopped: \(refused.stderr)")
                    if refused.status == 0 || refused.status == 1 { findings.append("round \(round): a resume acted while the owner was stopped") }
                    continue
                }
                if let current = runner, current.isRunning, act == 2 { continue }  // let it work a while
                if let current = runner, current.isRunning {
                    kill(current.processIdentifier, SIGKILL)
                    current.waitUntilExit()
                }
                let racers = 1 + random.below(3)
                let started = try (0..<racers).map { _ in try project.start("resume", String(runID)) }
                // Losers are refused at once; wait for them (a winner may still run, or may have finished).
                for _ in 0..<200 where started.filter(\.isRunning).count > 1 { pause(0.05) }
                pause(0.5)
                let acting = started.filter { $0.isRunning || ![2, 3].contains($0.terminationStatus) }
                acts.append("kill -9, \(racers) racing resumes: \(acting.count) acted")
                #expect(acting.count <= 1, "round \(round): \(acting.count) resumes acted at once")
                if acting.count > 1 { findings.append("round \(round): \(acting.count) resumes acted at once") }
                winners += acting.count
                runner = acting.first
            }
            // No more chaos this round: let the run end.
            runner?.waitUntilExit()
            if let status = try store.run(runID)?.status, !status.isFinal || status == .interrupted {
                let last = try await project.pipeline("resume", String(runID))
                acts.append("final resume: exit \(last.status)")
                winners += 1
            }
            let run = try #require(try store.run(runID))
            let live = try await project.live()
            let records = try store.deployments(service: "notification-service", environment: "staging")
            let latest = try #require(records.first)
            print("chaos round \(round) (\(healthy ? "healthy" : "failing") \(sha.prefix(7))): \(acts.joined(separator: "; ")) → \(run.status.rawValue)")

            #expect(run.status == (healthy ? .succeeded : .rolledBack), "round \(round): \(run.status) \(run.message ?? "")")
            #expect(live == latest.taskDefinitionArn, "round \(round): ECS runs \(live), the records say \(latest.taskDefinitionArn ?? "-")")
            if healthy {
                #expect(latest.kind == .deploy && latest.sha == sha && latest.previousTaskDefinitionArn == before)
            } else {
                #expect(latest.kind == .rollback && live == before, "round \(round): back on \(before), not \(live)")
            }
            let owners = try store.events(runID).filter { $0.kind == "run.owned" }
            #expect(owners.count == 1 + winners, "round \(round): \(owners.map(\.message))")
            let duplicates = try store.database.query(
                "SELECT run_id, service, kind, COUNT(*) AS n FROM deployments GROUP BY run_id, service, kind, task_definition_arn HAVING n > 1")
            #expect(duplicates.isEmpty, "round \(round): duplicated records \(duplicates)")
            #expect(!records.contains { $0.sha.isEmpty }, "round \(round): a record of an unknown commit")
            for stage in try store.stageRuns(runID) {
                let log = (try? String(contentsOf: project.home.url.appending(path: "runs/\(runID)/logs/\(stage.stageID).log"), encoding: .utf8)) ?? ""
                let attempts = log.split(separator: "\n").compactMap { line -> Int? in
                    guard let range = line.range(of: "--- attempt ") else { return nil }
                    return Int(line[range.upperBound...].prefix { $0.isNumber })
                }
                #expect(attempts == (0..<attempts.count).map { $0 + 1 }, "round \(round): \(stage.stageID) attempts \(attempts)")
                if Set(attempts).count != attempts.count { findings.append("round \(round): \(stage.stageID) made attempt twice: \(attempts)") }
            }
            #expect(try store.database.query("PRAGMA integrity_check").first?["integrity_check"].string == "ok")
        }
        print("chaos: \(rounds) rounds, findings: \(findings.isEmpty ? "none" : findings.joined(separator: "; "))")
    }
}

/// Sleeps this thread (the test drives processes; it has nothing else to do meanwhile).
func pause(_ seconds: Double) { usleep(useconds_t(seconds * 1_000_000)) }

/// A small random sequence that a seed repeats (SplitMix64).
struct SeededRandom {
    let seed: UInt64
    private var state: UInt64

    init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * Double(next() >> 11) / Double(1 << 53)
    }
}
