import PipelineDSL
import Runner
import StageContract
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
        #expect(problems.contains { $0.contains("'tabU+0009here': the id contains U+0009") }, "\(problems)")
    }

    /// An invisible or look-alike character is named by its code point, so the message shows what is wrong.
    @Test func invisibleCharactersAreShownByCodePoint() {
        let problems = validator.problems(in: plan([shell("deploy\u{200B}"), shell("аpi")]))  // a zero-width space; a Cyrillic а
        #expect(problems.contains("stage 'deployU+200B': the id contains U+200B; ids may use only \(NameRules.allowed)"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("stage 'U+0430pi': the id does not start with a letter or digit") }, "\(problems)")
    }

    /// A stage's own variables and secrets cannot take the names the runner sets (PIPELINE_SHA, PIPELINE_OUTPUT_…),
    /// which they would override, nor be something a shell cannot read; settings such as PIPELINE_REGISTRY are theirs.
    @Test func stageVariablesCannotOverrideTheRunnersOrBeInvalid() {
        var stage = shell("s")
        stage.environment = ["PIPELINE_SHA": "0000", "1BAD": "x", "GOOD_NAME": "y", "PIPELINE_REGISTRY": "localhost:5000"]
        stage.secrets = [SecretBinding(name: "PIPELINE_OUTPUT_X_Y", reference: .environment("T"))]
        let problems = validator.problems(in: plan([stage]))
        #expect(problems.contains("stage 's': the variable 'PIPELINE_SHA' is one the runner sets for every stage (the run, the stage or its files); choose another name"), "\(problems)")
        #expect(problems.contains("stage 's': the secret 'PIPELINE_OUTPUT_X_Y' is one the runner sets for every stage (an earlier stage's output); choose another name"), "\(problems)")
        #expect(problems.contains("stage 's': the variable '1BAD' is not a variable name (letters, digits and '_', not starting with a digit)"), "\(problems)")
        #expect(problems.count == 3, "\(problems)")
    }

    /// ECS takes letters, digits, '-' and '_' in a service name, and two plan services cannot deploy to one ECS service.
    @Test func ecsServiceNamesMustBeValidAndOwnedByOneService() {
        func deploy(_ service: String, to ecsService: String) -> Stage {
            Stage(id: "\(service).deploy", service: service, spec: .updateService(UpdateServiceSpec(service: service, cluster: "c", ecsService: ecsService, registerStage: nil)))
        }
        var web = api
        web.name = "web"
        let problems = validator.problems(in: plan([deploy("api", to: "shared"), deploy("web", to: "shared")], services: [api, web]))
        #expect(problems == ["services 'api' and 'web' are all deployed to the ECS service c/shared; give each its own (the environment's service-name pattern should contain {service})"], "\(problems)")
        let dotted = validator.problems(in: plan([deploy("api", to: "api.v2")]))
        #expect(dotted == ["stage 'api.deploy': the ECS service name 'api.v2' contains '.' (ECS takes letters, digits, '-' and '_'); change the environment's service-name pattern or the service's name"], "\(dotted)")
    }

    /// Image tags follow the OCI rule once the run's placeholders are in; a moving tag cannot look like a commit's.
    @Test func imageTagsAreCheckedWithTheirPlaceholdersFilled() {
        let push = Stage(
            id: "api.push", service: "api",
            spec: .push(PushImageSpec(
                service: "api", repository: "sv-api", buildStage: nil, tags: ["{sha}", "{shortSha}", "v 1", ".hidden", "stable"],
                movingTags: ["{env}", "latest-{sha}", String(repeating: "a", count: 40), "run-{run}", "stable"])))
        let problems = validator.problems(in: plan([push]))
        #expect(problems == [
            "stage 'api.push': the tag 'stable' is both fixed and moving; name it in one of tags and movingTags",
            "stage 'api.push': the tag 'v 1' may contain only letters, digits, '_', '.' and '-'",
            "stage 'api.push': the tag '.hidden' must start with a letter, a digit or '_'",
            "stage 'api.push': the moving tag 'latest-{sha}' names {sha}, which is different in every run; a moving tag should name the same thing each run (as {env})",
            "stage 'api.push': the moving tag '\(String(repeating: "a", count: 40))' looks like a commit SHA, which is the immutable tag of that commit's image",
            "stage 'api.push': the moving tag 'run-{run}' names {run}, which is different in every run; a moving tag should name the same thing each run (as {env})",
        ], "\(problems)")
    }

    /// The environment's name is a safe identifier too; two DNS stages writing one record (two services with the
    /// same hostname) overwrite each other and are refused; stage ids in every message show invisible characters.
    @Test func environmentNamesSharedRecordsAndShownIds() {
        var bad = plan([])
        bad.environment.name = "e v\u{200B}il"
        #expect(validator.problems(in: bad).contains { $0.hasPrefix("environment 'e vU+200Bil': the name contains U+200B, space") }, "\(validator.problems(in: bad))")
        func dns(_ id: String, _ name: String) -> Stage {
            Stage(id: id, spec: .dnsRecord(DNSRecordSpec(service: nil, zone: "z.net", name: name, record: DNSRecordValue.cname("lb.example.com"))))
        }
        #expect(validator.problems(in: plan([dns("a.dns", "api.z.net"), dns("b.dns", "API.z.net.")])) == [
            "stages 'a.dns' and 'b.dns' all write the DNS record api.z.net CNAME; give the services different hostnames",
        ])
        #expect(validator.problems(in: plan([Stage(id: "а.x", timeoutSeconds: -1, spec: .shell(ShellSpec(command: "true")))])).contains(
            "stage 'U+0430.x': invalid duration: timeout must be more than 0 seconds, got -1.0"))
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
