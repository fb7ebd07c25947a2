import Foundation
import PipelineDSL
import Runner
import Testing

private let env = EnvironmentSpec(name: "prod", branch: "main", region: "us-east-1", cluster: "prod-cluster")
private let api = ServiceSpec(
    name: "api", repository: "sv-api", port: 5003, protocol: .http, hostname: "api",
    build: BuildSpec(context: "services/api"), taskDefinition: "taskdefs/api.json", healthCheck: .tcp)
private let plan = Plan(
    pipeline: "t", source: Source(), parallelism: 2, environment: env, services: [api], notifications: [],
    stages: [
        Stage(id: "api.deploy", service: "api", spec: .updateService(UpdateServiceSpec(service: "api", cluster: "prod-cluster", ecsService: "api-prod", registerStage: nil))),
    ])

private func arn(_ revision: Int) -> String { "arn:aws:ecs:us-east-1:123456789012:task-definition/api-prod:\(revision)" }
private func sha(_ digit: Character) -> String { String(repeating: digit, count: 40) }
private func record(_ digit: Character, _ revision: Int) -> DeploymentRecord {
    DeploymentRecord(
        run: 1, environment: "prod", service: "api", kind: .deploy, sha: sha(digit), image: "sv-api:\(sha(digit))", digest: nil,
        taskDefinitionArn: arn(revision), taskDefinition: nil, previousTaskDefinitionArn: nil, trigger: "cli", approvedBy: nil)
}

/// Choosing what a rollback goes back to, in the library, without the CLI or AWS (what ECS says comes in).
@Suite struct RollbackPlannerTests {
    let planner = try! RollbackPlanner(plan: plan, service: "api")
    let records = [record("c", 3), record("b", 2), record("a", 1)]  // newest first; c runs now

    func target(_ to: String, revisions: [RollbackPlanner.Revision] = []) async throws -> RollbackPlanner.Target {
        try await planner.target(try RollbackPlanner.Selector(to), records: records, current: arn(3)) { family in
            #expect(family == "api-prod")
            return revisions
        }
    }

    @Test func previousIsTheLastDeploymentOnAnotherRevision() async throws {
        let found = try await target("previous")
        #expect(found.sha == sha("b") && found.taskDefinitionArn == arn(2) && found.deployed != nil)
    }

    @Test func aShortSHAFindsItsRecordAndAnAmbiguousOneIsRefused() async throws {
        #expect(try await target("AAAA").taskDefinitionArn == arn(1))
        let twins = [record("c", 3)] + [DeploymentRecord(
            run: 2, environment: "prod", service: "api", kind: .deploy, sha: "cccc" + String(repeating: "d", count: 36), image: nil,
            digest: nil, taskDefinitionArn: arn(4), taskDefinition: nil, previousTaskDefinitionArn: nil, trigger: nil, approvedBy: nil)]
        await #expect(throws: RollbackRefusal.self) {
            try await planner.target(.commit("cccc"), records: twins, current: arn(9)) { _ in [] }
        }
    }

    @Test func aCommitWithoutARecordIsFoundAmongTheRevisionsByItsImageTag() async throws {
        let found = try await target(
            "eeee", revisions: [.init(arn: arn(7), images: ["repo/sv-api:\(sha("e"))"]), .init(arn: arn(8), images: ["repo/sv-api@sha256:00"])])
        #expect(found.sha == sha("e") && found.taskDefinitionArn == arn(7) && found.deployed == nil)
        do {
            _ = try await target("ffff")
            Issue.record("found a commit never deployed")
        } catch let refusal as RollbackRefusal {
            #expect(refusal.message == "ffff was never deployed for this service: no deployment record and no ACTIVE revision of api-prod has an image tagged with it")
        }
    }

    @Test func badSelectorsAndUnknownServicesAreRefused() {
        #expect(throws: RollbackRefusal.self) { try RollbackPlanner.Selector("abc") }
        #expect(throws: RollbackRefusal.self) { try RollbackPlanner.Selector(String(repeating: "\u{FF10}", count: 8)) }  // full-width digits
        #expect(throws: RollbackRefusal.self) { try RollbackPlanner(plan: plan, service: "web") }
    }

    @Test func anInactiveRevisionIsRegisteredAgainFromECSsCopy() throws {
        let bare = RollbackPlanner.Target(sha: sha("a"), taskDefinitionArn: arn(1), taskDefinition: nil, image: nil, deployed: nil)
        #expect(try planner.check(bare, status: "INACTIVE") == " (INACTIVE: ECS's copy of it is registered again)")
        #expect(try planner.check(bare, status: "ACTIVE") == "")
        let stored = RollbackPlanner.Target(sha: sha("a"), taskDefinitionArn: arn(1), taskDefinition: "{}", image: nil, deployed: nil)
        let rollback = planner.rollbackPlan(to: stored, image: "sv-api:\(sha("a"))")
        #expect(rollback.stages.map(\.id) == ["api.rollback"] && rollback.parallelism == 1)
    }
}
