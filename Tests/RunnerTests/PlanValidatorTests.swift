import PipelineDSL
import Runner
import Testing

private let env = EnvironmentSpec(name: "staging", branch: "staging", region: "us-east-1", cluster: "c")
private let api = ServiceSpec(
    name: "api", repository: "sv-api", port: 5003, protocol: .http, hostname: "api",
    build: BuildSpec(context: "services/api"), taskDefinition: "taskdefs/api.json", healthCheck: .tcp)

private func plan(_ stages: [Stage], services: [ServiceSpec] = [api], parallelism: Int = 4) -> Plan {
    Plan(
        pipeline: "t", source: Source(), parallelism: parallelism, environment: env, services: services,
        notifications: [], stages: stages)
}

private func shell(_ id: String, after: [String] = [], timeout: Double? = nil, retry: RetryPolicy? = nil) -> Stage {
    Stage(id: id, dependsOn: after, timeoutSeconds: timeout, retry: retry, spec: .shell(ShellSpec(command: "true")))
}

@Suite struct PlanValidatorTests {
    let validator = PlanValidator()

    @Test func aSoundPlanHasNoProblems() {
        #expect(validator.problems(in: plan([shell("a"), shell("b", after: ["a"]), shell("c", after: ["a", "b"])])) == [])
    }

    @Test func safeIdsWithDotsDashesAndUnderscoresPass() {
        #expect(validator.problems(in: plan([shell("api.build-1"), shell("Deploy_2.x")])) == [])
    }

    @Test func idsThatDifferOnlyInCaseShareAFileAndAVariable() {
        let problems = validator.problems(in: plan([shell("Build"), shell("build")]))
        #expect(problems.contains { $0.hasPrefix("stages 'Build' and 'build' share the files logs/Build.log") }, "\(problems)")
        #expect(problems.contains("stages 'Build' and 'build' both export PIPELINE_OUTPUT_BUILD_<KEY>; rename one of them"), "\(problems)")
    }

    @Test func longAndControlCharacterIdsAreRefused() {
        let problems = validator.problems(in: plan([shell(String(repeating: "a", count: 101)), shell("tab\there")]))
        #expect(problems.contains { $0.contains("is 101 characters long") }, "\(problems)")
        #expect(problems.contains { $0.contains("'tab\there': the id contains control characters") }, "\(problems)")
    }

    @Test func duplicateIdsAreNamedOnce() {
        let problems = validator.problems(in: plan([shell("a"), shell("a"), shell("a")]))
        #expect(problems == ["stage 'a': the id is used by more than one stage; give one of them another .id(...)"])
    }

    @Test func unknownDependenciesAreNamedWithALikelyFix() {
        let problems = validator.problems(
            in: plan([shell("api.build"), shell("api.push", after: ["build"]), shell("x", after: ["nothing"])]))
        #expect(problems.contains("stage 'api.push': depends on unknown stage 'build'; did you mean 'api.build'?"))
        #expect(problems.contains("stage 'x': depends on unknown stage 'nothing'"))
    }

    @Test func aCycleIsPrintedStageByStage() {
        let problems = validator.problems(
            in: plan([shell("a", after: ["c"]), shell("b", after: ["a"]), shell("c", after: ["b"])]))
        #expect(problems.count == 1)
        #expect(problems.first?.contains("dependency cycle: ") == true)
        let cycle = problems.first.map { String($0.split(separator: ": ")[2].split(separator: ";")[0]) }
        #expect(["a → c → b → a", "c → b → a → c", "b → a → c → b"].contains(cycle ?? ""))
    }

    @Test func aStageThatWaitsForItselfIsACycle() {
        let problems = validator.problems(in: plan([shell("a", after: ["a"])]))
        #expect(problems == ["stage 'a': dependency cycle: a → a; remove one of these dependencies"])
    }

    @Test(arguments: [
        (shell("s", timeout: 0), "stage 's': invalid duration: timeout must be more than 0 seconds, got 0.0"),
        (shell("s", timeout: -5), "stage 's': invalid duration: timeout must be more than 0 seconds, got -5.0"),
        (shell("s", timeout: .infinity), "stage 's': invalid duration: timeout must be more than 0 seconds, got inf"),
        (
            shell("s", retry: RetryPolicy(attempts: -1, backoffSeconds: 1)),
            "stage 's': invalid count: retries must be 0 to 100, got -1"
        ),
        (
            shell("s", retry: RetryPolicy(attempts: 1, backoffSeconds: -1)),
            "stage 's': invalid duration: retry backoff must be 0 or more seconds, got -1.0"
        ),
        (
            Stage(id: "gate", spec: .approval(ApprovalSpec(approvers: ["alice", "bob"], required: 3))),
            "stage 'gate': invalid count: required approvals must be 1 to 2, got 3"
        ),
        (
            Stage(id: "gate", spec: .approval(ApprovalSpec(approvers: []))),
            "stage 'gate': an approval needs at least one approver: Approval(approvers: [\"alice\"])"
        ),
        (
            Stage(
                id: "h", service: "api",
                spec: .healthCheck(HealthCheckSpec(service: "api", probe: .tcp, host: "h", port: 80, consecutiveSuccesses: 0))),
            "stage 'h': invalid count: consecutive successes must be 1 to 1000, got 0"
        ),
        (
            Stage(
                id: "d", service: "api",
                spec: .updateService(
                    UpdateServiceSpec(service: "api", cluster: "c", ecsService: "api", registerStage: nil, waitTimeoutSeconds: 0))),
            "stage 'd': invalid duration: wait timeout must be more than 0 seconds, got 0.0"
        ),
        (
            Stage(id: "b", service: "billing", spec: .shell(ShellSpec(command: "true"))),
            "stage 'b': belongs to unknown service 'billing'"
        ),
    ])
    func invalidDurationsAndCountsNameTheStage(stage: Stage, message: String) {
        #expect(validator.problems(in: plan([stage])) == [message])
    }

    @Test func invalidPlanWideCounts() {
        var bad = api
        bad.port = 70000
        let problems = validator.problems(in: plan([], services: [bad], parallelism: 0))
        #expect(problems.contains("invalid count: parallelism must be at least 1, got 0"))
        #expect(problems.contains("service 'api': invalid count: port must be 1 to 65535, got 70000"))
    }

    @Test func referencesBetweenServiceStagesMustResolve() {
        let push = Stage(
            id: "api.push", service: "api",
            spec: .push(PushImageSpec(service: "api", repository: "sv-api", buildStage: "api.build")))
        #expect(validator.problems(in: plan([push])) == ["stage 'api.push': its build stage 'api.build' is not in the plan"])
    }

    @Test func extraChecksAreRunAndReportedWithTheRest() {
        let validator = PlanValidator(checks: [{ plan in ["checked \(plan.stages.count) stages"] }])
        #expect(validator.problems(in: plan([shell("a", after: ["zz"])])) == [
            "stage 'a': depends on unknown stage 'zz'", "checked 1 stages",
        ])
    }
}
