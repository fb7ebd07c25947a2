import AWS
import Foundation
import Runner
import Testing
import TestSupport

/// A deploy whose runner dies or is cancelled during the rollout, against the local stand-ins: what ran before
/// the run is recorded once, before the first change, and every later attempt, resume and rollback uses it.
@Suite(.serialized) struct InterruptedDeployTests {
    /// Stand-ins of this suite's own: no other test touches their services.
    static let aws = LocalAWS.dedicated()

    @Test func aResumedDeployRollsBackToWhatRanBeforeTheRunNotToItsOwnRevision() async throws {
        let project = try DeployProject(service: "user-service", ecsService: "user-service-staging", repository: "sv-user", port: 5000, grpc: true, aws: Self.aws)
        let a = try project.commit("A")
        let first = try await project.pipeline("run", "staging")
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let revisionA = try await project.live()

        // B fails its health check, and its rollout is slow: the runner is killed while it waits.
        _ = try project.commit("B", health: "failing", looks: 80)
        let runner = try project.start("run", "staging")
        #expect(await project.signal(runner, SIGKILL, run: 2, stage: "user-service.deploy", afterLogging: "waiting:"))
        let revisionB = try #require(try project.outputs(run: 2, stage: "user-service.register")["taskDefinitionArn"])
        #expect(try await project.live() == revisionB, "B's rollout had started")

        let resumed = try await project.pipeline("resume", "2")
        #expect(resumed.status == 1, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("before this run it ran \(revisionA)"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("rolled user-service back to \(revisionA)"), "\(resumed.stdout)")
        #expect(try await project.live() == revisionA, "the service is back on A, not left on B")

        let store = try StateStore(home: project.home.url)
        #expect(try store.run(2)?.status == .rolledBack)
        let records = try store.deployments(service: "user-service", environment: "staging")
        #expect(records.first?.kind == .rollback && records.first?.sha == a && records.first?.taskDefinitionArn == revisionA, "\(records)")
        #expect(!records.contains { $0.sha.isEmpty }, "no \"rollback (unknown commit)\"")
        let deployments = try await project.pipeline("deployments", "user-service")
        #expect(!deployments.stdout.contains("unknown commit"), "\(deployments.stdout)")
    }

    @Test func aRunnerKilledDuringItsHealthChecksRollbackIsNeverTakenForAHealthyDeploy() async throws {
        let project = try DeployProject(
            service: "frontend-service", ecsService: "frontend-service-staging", repository: "frontend-svc", port: 4201, grpc: false, aws: Self.aws)
        let a = try project.commit("A", looks: 40)  // the rollback back to A rolls out slowly
        #expect(try await project.pipeline("run", "staging").status == 0)
        let revisionA = try await project.live()
        _ = try project.commit("B", health: "failing")
        let runner = try project.start("run", "staging")
        #expect(await project.signal(
            runner, SIGKILL, run: 2, stage: "frontend-service.health",
            afterLogging: "rolling frontend-service back", "putting frontend-service-staging", delay: 0.5))
        #expect(try await project.live() == revisionA, "the killed attempt had sent the rollback")

        // The resumed health check finds A running, not B: it finishes the rollback instead of calling B healthy.
        let resumed = try await project.pipeline("resume", "2")
        #expect(resumed.status == 1, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("an earlier attempt of this health check rolled frontend-service back"), "\(resumed.stdout)")
        let store = try StateStore(home: project.home.url)
        #expect(try store.run(2)?.status == .rolledBack)
        let records = try store.deployments(service: "frontend-service", environment: "staging")
        #expect(records.map(\.kind) == [.rollback, .deploy] && records.first?.sha == a, "\(records)")
        #expect(try await project.live() == revisionA)
    }

    @Test func aRollbackThatFailsTooSaysWhereTheServiceWasLeftAndWhatToRun() async throws {
        let project = try DeployProject(
            service: "expense-service", ecsService: "expense-service-staging", repository: "sv-expense", port: 5001, grpc: false, aws: Self.aws)
        _ = try project.commit("A")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let revisionA = try await project.live()
        // A's revision deregistered, and no stored definition for the automatic rollback to register again.
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: Self.aws))
        struct Deregister: Encodable { let taskDefinition: String }
        struct Answer: Decodable {}
        _ = try await client.json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DeregisterTaskDefinition", input: Deregister(taskDefinition: revisionA), as: Answer.self)
        _ = try project.commit("B", health: "failing")
        let failed = try await project.pipeline("run", "staging")
        #expect(failed.status == 1)
        let revisionB = try #require(try project.outputs(run: 2, stage: "expense-service.register")["taskDefinitionArn"])
        let history = try await project.pipeline("history", "staging")
        #expect(history.stdout.contains("expense-service was left on \(revisionB) (rolling back to \(revisionA) failed"), "\(history.stdout)")
        #expect(history.stdout.contains("`pipeline rollback expense-service --env staging --to previous`"), "\(history.stdout)")
    }

    @Test func ctrlCDuringARolloutPutsTheServiceBackAndOnCancelLeaveLeavesItForResume() async throws {
        let project = try DeployProject(service: "api-service", ecsService: "api-service-staging", repository: "sv-core-api", port: 5003, grpc: false, aws: Self.aws)
        let a = try project.commit("A")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let revisionA = try await project.live()

        let b = try project.commit("B", looks: 80)
        var runner = try project.start("run", "staging")
        #expect(await project.signal(runner, SIGINT, run: 2, stage: "api-service.deploy", afterLogging: "waiting:"))
        #expect(runner.terminationStatus == 130)
        #expect(try await project.live() == revisionA, "Ctrl-C put the service back on what it ran before the run")
        let store = try StateStore(home: project.home.url)
        let cancelled = try #require(try store.run(2))
        #expect(cancelled.status == .cancelled && cancelled.message?.contains("rolled back: api-service") == true, "\(cancelled.message ?? "")")
        let undone = try #require(try store.deployments(service: "api-service", environment: "staging").first)
        #expect(undone.kind == .rollback && undone.sha == a, "\(undone)")

        runner = try project.start("run", "staging", "--on-cancel", "leave")
        #expect(await project.signal(runner, SIGINT, run: 3, stage: "api-service.deploy", afterLogging: "waiting:"))
        #expect(runner.terminationStatus == 130)
        let revisionB = try #require(try project.outputs(run: 3, stage: "api-service.register")["taskDefinitionArn"])
        #expect(try await project.live() == revisionB, "left on B, as asked")
        let left = try #require(try store.run(3))
        #expect(left.message?.contains("api-service was left on \(revisionB)") == true, "\(left.message ?? "")")

        // The next resume still knows what ran before the run, and finishes the deploy.
        let resumed = try await project.pipeline("resume", "3")
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("before this run it ran \(revisionA)"), "\(resumed.stdout)")
        #expect(try await project.live() == revisionB)
        let latest = try #require(try store.deployments(service: "api-service", environment: "staging").first)
        #expect(latest.kind == .deploy && latest.sha == b && latest.previousTaskDefinitionArn == revisionA)
    }
}

/// The run's stage server (`pipeline __stage-server`, which forks the run's built-in stages) stopped or killed while
/// a deploy waits for its rollout, against the local stand-ins: the run never waits on it for ever.
@Suite(.serialized) struct StageServerTests {
    static let aws = LocalAWS.dedicated()

    /// Stopped (SIGSTOP): the deploy's own process goes on and ends; the runner, which the server no longer tells,
    /// gives the server up a few seconds later, takes the deploy's status from its unreaped process, and starts the
    /// later stages as new processes: the run succeeds. Killed with -9: the stage in flight dies with it (137), the
    /// run fails saying so, at once. With PIPELINE_STAGE_SERVER=off every stage is a new process of its own.
    @Test func aStoppedOrKilledStageServerNeverHoldsTheRunUp() async throws {
        let project = try DeployProject(
            service: "notification-service", ecsService: "notification-service-staging", repository: "sv-notify", port: 5002,
            grpc: false, aws: Self.aws)
        _ = try project.commit("A")
        var off = project.environment
        off["PIPELINE_STAGE_SERVER"] = "off"
        let first = try await runProcess(Project.executable, ["run", "staging"], in: project.repo, environment: off)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let store = try StateStore(home: project.home.url)

        _ = try project.commit("B", looks: 30)  // 30 looks, 100 ms apart: the deploy waits about 3 s
        async let stopped = runProcess(Project.executable, ["run", "staging"], in: project.repo, environment: project.environment)
        let server = try #require(await Self.server(of: project, run: 2, onceLogged: "updating to"), "no stage server found for run 2")
        kill(server.pid, SIGSTOP)
        Self.watchdog(runner: server.runner)
        let second = try await stopped
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stderr.contains("the stage server (pid \(server.pid)) ended: it did not report the end of stage process"), "\(second.stderr)")
        #expect(kill(server.pid, 0) != 0, "the stopped server was given up: killed")
        #expect(try store.run(2)?.status == .succeeded)
        let stages = try store.stageRuns(2)
        #expect(stages.first { $0.stageID == "notification-service.deploy" }?.exitCode == 0, "\(stages)")
        #expect(stages.first { $0.stageID == "notification-service.health" }?.status == .succeeded, "\(stages)")

        _ = try project.commit("C", looks: 60)
        async let killed = runProcess(Project.executable, ["run", "staging"], in: project.repo, environment: project.environment)
        let third = try #require(await Self.server(of: project, run: 3, onceLogged: "updating to"), "no stage server found for run 3")
        kill(third.pid, SIGKILL)
        Self.watchdog(runner: third.runner)
        let ended = try await killed
        #expect(ended.status == 1, "\(ended.stdout)\(ended.stderr)")
        #expect(ended.stderr.contains("the stage server (pid \(third.pid)) ended: it was killed or crashed"), "\(ended.stderr)")
        let deploy = try #require(try store.stageRuns(3).first { $0.stageID == "notification-service.deploy" })
        #expect(deploy.status == .failed && deploy.exitCode == 137, "\(deploy)")
    }

    /// Once the log of stage `.deploy` of `run` has `text`: the run's stage server and the runner that started it.
    static func server(of project: DeployProject, run: Int, onceLogged text: String) async -> (pid: pid_t, runner: pid_t)? {
        let log = project.home.url.appending(path: "runs/\(run)/logs/\(project.service).deploy.log")
        let folder = project.home.url.appending(path: "runs/\(run)").path
        return await onOwnThread { () -> (pid: pid_t, runner: pid_t)? in
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                if let content = try? String(contentsOf: log, encoding: .utf8), content.contains(text) { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            // The stages it forked have its command line too: the server is the one whose parent is not a server.
            func arguments(_ pid: String) -> [String] {
                (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            }
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(entry), arguments(entry) == [arguments(entry).first ?? "", "__stage-server", folder],
                    let parent = parentOf(pid), !arguments(String(parent)).contains("__stage-server")
                else { continue }
                return (pid, parent)
            }
            return nil
        }
    }

    /// The parent of `pid`, from /proc.
    static func parentOf(_ pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// Kills `runner` if it still runs in `seconds` (and is still a `pipeline run`, not a process that got its
    /// pid since): a run that waits for ever fails the test instead of hanging it.
    static func watchdog(runner: pid_t, seconds: Double = 180) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: seconds)
            let line = FileManager.default.contents(atPath: "/proc/\(runner)/cmdline") ?? Data()
            if line.split(separator: 0).map({ String(decoding: $0, as: UTF8.self) }).contains("run") { kill(runner, SIGKILL) }
        }
    }
}
