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
