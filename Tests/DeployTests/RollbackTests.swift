import AWS
import Foundation
import HTTP
import Runner
import Testing
import TestSupport

/// Deployments, automatic rollback and `pipeline rollback` through the CLI against the local stand-ins.
@Suite struct RollbackTests {
    @Test func deploysAreRecordedABadOneRollsBackAndRollbackGoesToAnySHA() async throws {
        let project = try DeployProject(service: "user-service", ecsService: "user-service-staging", repository: "sv-user", port: 5000, grpc: true)
        let a = try project.commit("A")
        let first = try await project.pipeline("run", "staging")
        #expect(first.status == 0, "\(first.stdout)")
        let revisionA = try #require(try project.outputs(run: 1, stage: "user-service.register")["taskDefinitionArn"])
        let imageA = try #require(try project.outputs(run: 1, stage: "user-service.push")["image"])
        let b = try project.commit("B")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let revisionB = try #require(try project.outputs(run: 2, stage: "user-service.register")["taskDefinitionArn"])
        #expect(try await project.live() == revisionB)

        // A health check that fails puts the service back on B and says so.
        let c = try project.commit("C", health: "failing")
        let bad = try await project.pipeline("run", "staging")
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("run 3 failed and was rolled back"), "\(bad.stdout)")
        #expect(bad.stdout.contains("rolled user-service back to \(revisionB)"), "\(bad.stdout)")
        #expect(try await project.live() == revisionB)
        let attempts = try String(contentsOf: project.home.url.appending(path: "runs/3/artifacts/user-service.health/health.jsonl"), encoding: .utf8)
        #expect(attempts.split(separator: "\n").count >= 2 && attempts.contains("\"healthy\":false") && attempts.contains("latencyMilliseconds"))

        // Back to A by its short SHA: A's task definition and image run again, and that is recorded.
        let toA = try await project.pipeline("rollback", "user-service", "--to", String(a.prefix(7)), "--yes")
        #expect(toA.status == 0, "\(toA.stdout)\(toA.stderr)")
        #expect(toA.stdout.contains("to    \(a.prefix(12)) user-service-staging:"), "\(toA.stdout)")
        #expect(try await project.live() == revisionA)
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        #expect(try await client.describeTaskDefinition(revisionA).images == [imageA])

        // previous: the deployment before the one running now (B).
        #expect(try await project.pipeline("rollback", "user-service", "--yes").status == 0)
        #expect(try await project.live() == revisionB)

        let deployments = try await project.pipeline("deployments", "user-service", "--env", "staging")
        let rows = deployments.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        // Newest first: rollback to B (run 5), rollback to A (run 4), automatic rollback to B (run 3), deploys of B and A.
        #expect(rows.map { String($0[3]) } == ["rollback", "rollback", "rollback", "deploy", "deploy"], "\(deployments.stdout)")
        #expect(rows.map { String($0[4]) } == [b, a, b, b, a].map { String($0.prefix(12)) }, "\(deployments.stdout)")
        #expect(rows.map { String($0[7]) } == ["5", "4", "3", "2", "1"])
        let history = try await project.pipeline("history", "staging")
        #expect(history.stdout.contains("rolled-back"), "\(history.stdout)")
        #expect(!deployments.stdout.contains(String(c.prefix(12))))
    }

    @Test func refusalsChangeNothingAndAnInactiveRevisionIsRegisteredAgain() async throws {
        let project = try DeployProject(service: "api-service", ecsService: "expense-service-staging", repository: "sv-core-api", port: 5003, grpc: false)
        let a = try project.commit("A")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let b = try project.commit("B")
        #expect(try await project.pipeline("run", "staging").status == 0)
        let revisionA = try #require(try project.outputs(run: 1, stage: "api-service.register")["taskDefinitionArn"])
        let revisionB = try await project.live()

        let never = try await project.pipeline("rollback", "api-service", "--to", "0000000", "--yes")
        #expect(never.status == 2 && never.stderr.contains("0000000 was never deployed for this service"), "\(never.stderr)")

        let dry = try await project.pipeline("rollback", "api-service", "--to", String(a.prefix(8)), "--dry-run")
        #expect(dry.status == 0 && dry.stdout.contains("to    \(a.prefix(12))") && dry.stdout.contains("dry run: nothing changed"), "\(dry.stdout)")
        #expect(try await project.live() == revisionB)

        let unconfirmed = try await project.pipeline("rollback", "api-service", "--to", String(a.prefix(8)))
        #expect(unconfirmed.status == 2 && unconfirmed.stderr.contains("add --yes"), "\(unconfirmed.stderr)")

        // Another run holds the environment: refused, naming it.
        let store = try StateStore(home: project.home.url)
        let (holder, lease) = try store.createRun(environment: "staging", sha: nil, ref: nil, trigger: "cli", user: "someone-else")
        _ = try store.tryAcquireLock(environment: "staging", lease: lease)
        let busy = try await project.pipeline("rollback", "api-service", "--to", String(a.prefix(8)), "--yes")
        // Busy is exit 3, as the README says, not a refusal of what was asked.
        #expect(busy.status == 3 && busy.stderr.contains("environment staging is busy: run \(holder.id)") && busy.stderr.contains("someone-else"), "\(busy.stderr)")
        try store.setRunStatus(holder.id, .failed, message: "test holder")
        #expect(try await project.live() == revisionB)

        // A's revision deregistered: registered again from ECS's copy of it, then deployed. The stored definition is
        // spoiled first (as masking spoils one that held a secret's value): ECS's copy is what comes back, not it.
        try store.database.execute(
            "UPDATE deployments SET task_definition_json = ? WHERE task_definition_arn = ?",
            [.text(#"{"family": "spoiled", "containerDefinitions": [{"name": "x", "image": "***"}]}"#), .text(revisionA)])
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: LocalAWS.environment))
        struct Deregister: Encodable { let taskDefinition: String }
        struct Answer: Decodable {}
        _ = try await client.json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DeregisterTaskDefinition", input: Deregister(taskDefinition: revisionA), as: Answer.self)
        let again = try await project.pipeline("rollback", "api-service", "--to", String(a.prefix(8)), "--yes")
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("INACTIVE"), "\(again.stdout)")
        let live = try await project.live()
        #expect(live != revisionA && live != revisionB)
        #expect(try await client.describeTaskDefinition(live).images == (try await client.describeTaskDefinition(revisionA).images))

        // B's image gone from the registry: refused before anything changes.
        let digest = try #require(try project.outputs(run: 2, stage: "api-service.push")["digest"])
        let registry = LocalAWS.environment["PIPELINE_REGISTRY"]!
        let deleted = try await HTTPClient().send(
            HTTPRequest(
                method: "DELETE", url: "\(registry)/v2/sv-core-api/manifests/\(digest)",
                headers: [("Authorization", "Basic " + Data("AWS:123456789012-auth-token".utf8).base64EncodedString())]))
        #expect(deleted.status == 202)
        let gone = try await project.pipeline("rollback", "api-service", "--to", String(b.prefix(8)), "--yes")
        #expect(gone.status == 2 && gone.stderr.contains("has no image sv-core-api@\(digest)"), "\(gone.stderr)")
        #expect(try await project.live() == live)

        // Two recorded commits that share a prefix: ambiguous.
        for sha in ["abcd1111" + String(repeating: "1", count: 32), "abcd2222" + String(repeating: "2", count: 32)] {
            try store.recordDeployment(
                DeploymentRecord(
                    run: nil, environment: "staging", service: "api-service", kind: .deploy, sha: sha, image: nil, digest: nil,
                    taskDefinitionArn: revisionA, taskDefinition: nil, previousTaskDefinitionArn: nil, trigger: "test", approvedBy: nil))
        }
        let ambiguous = try await project.pipeline("rollback", "api-service", "--to", "abcd", "--yes")
        #expect(ambiguous.status == 2 && ambiguous.stderr.contains("abcd is ambiguous: it starts abcd11111111, abcd22222222"), "\(ambiguous.stderr)")
        #expect(try await project.live() == live)
    }
}
