import Foundation
import PipelineDSL
import Stages
import TestSupport
import Testing

private let env = EnvironmentSpec(
    name: "staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster",
    dns: DNSSpec(zone: "staging.example.net", domain: "staging.example.net"), serviceNamePattern: "{service}-staging",
    variables: ["LOG_LEVEL": "debug", "EXECUTION_ROLE": "arn:aws:iam::1:role/x", "LOAD_BALANCER": "lb"])
private let api = ServiceSpec(
    name: "api-service", repository: "sv-core-api", port: 5003, protocol: .http, hostname: "api-service",
    build: BuildSpec(context: "services/api-service"), taskDefinition: "taskdefs/api-service.json", healthCheck: .tcp)

private func template(_ json: String) throws -> TaskDefinitionTemplate {
    let folder = TemporaryDirectory()
    let file = folder.write("t.json", json)
    return try TaskDefinitionTemplate(contentsOf: file, path: "taskdefs/t.json")
}

private let minimal = """
    {"family": "{{ecsService}}", "containerDefinitions": [{"name": "api", "image": "{{image}}"}]}
    """

@Suite struct TaskDefinitionTemplateTests {
    @Test(arguments: ["user-service", "expense-service", "notification-service", "api-service", "frontend-service"])
    func theReferenceTemplatesAreValidRequests(service: String) throws {
        let url = Project.root.appending(path: "pipelines/taskdefs/\(service).json")
        let template = try TaskDefinitionTemplate(contentsOf: url, path: "taskdefs/\(service).json")
        var spec = api
        spec.name = service
        #expect(template.problems(environment: env, service: spec) == [])
    }

    @Test func renderingFillsEveryPlaceholder() throws {
        var values = TaskDefinitionTemplate.values(environment: env, service: api)
        values["image"] = "123.dkr.ecr.us-east-1.amazonaws.com/sv-core-api@sha256:abc"
        let rendered = try template(minimal).render(values)
        #expect(
            rendered
                == .object([
                    "family": .string("api-service-staging"),
                    "containerDefinitions": .array([
                        .object([
                            "name": .string("api"),
                            "image": .string("123.dkr.ecr.us-east-1.amazonaws.com/sv-core-api@sha256:abc"),
                        ])
                    ]),
                ]))
    }

    @Test(arguments: [
        (
            #"{"containerDefinitions": [{"name": "a", "image": "{{image}}"}]}"#,
            "$: missing required field 'family'"
        ),
        (
            #"{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{image}}"}], "cpus": "256"}"#,
            "$: unknown field 'cpus'"
        ),
        (
            #"{"family": "f", "containerdefinitions": [], "containerDefinitions": [{"name": "a", "image": "{{image}}"}]}"#,
            "$: unknown field 'containerdefinitions'; did you mean 'containerDefinitions'?"
        ),
        (
            #"{"family": "f", "containerDefinitions": [{"name": "a", "image": "{{image}}", "portMappings": [{"containerPort": "80"}]}]}"#,
            "$.containerDefinitions[0].portMappings[0].containerPort: expected an integer, found a string"
        ),
        (
            #"{"family": "f", "networkMode": "vpc", "containerDefinitions": [{"name": "a", "image": "{{image}}"}]}"#,
            "$.networkMode: 'vpc' is not one of bridge, host, awsvpc, none"
        ),
        (
            #"{"family": "f", "containerDefinitions": [{"image": "{{image}}"}]}"#,
            "$.containerDefinitions[0]: missing required field 'name'"
        ),
        (
            #"{"family": "f", "containerDefinitions": {"name": "a", "image": "{{image}}"}}"#,
            "$.containerDefinitions: expected an array, found an object"
        ),
    ])
    func shapeProblemsNameThePlace(json: String, problem: String) throws {
        let problems = try template(json).problems(environment: env, service: api)
        #expect(problems == ["task-definition template taskdefs/t.json is not a RegisterTaskDefinition request: \(problem)"])
    }

    @Test func unknownPlaceholdersAreListedWithTheKnownOnes() throws {
        let json = #"{"family": "{{famly}}", "containerDefinitions": [{"name": "a", "image": "{{image}}", "command": ["{{var.NOPE}}"]}]}"#
        let problems = try template(json).problems(environment: env, service: api)
        #expect(problems.count == 1)
        #expect(problems[0].contains("unknown placeholder {{famly}}, {{var.NOPE}}"))
        #expect(problems[0].contains("{{ecsService}}"))
    }

    @Test func aTemplateThatNeverUsesTheImageIsRefused() throws {
        let json = #"{"family": "f", "containerDefinitions": [{"name": "a", "image": "nginx:latest"}]}"#
        let problems = try template(json).problems(environment: env, service: api)
        #expect(problems.count == 1)
        #expect(problems[0].contains("no container uses {{image}}"))
    }

    @Test func invalidJSONAndMissingFilesSayWhich() throws {
        let broken = #expect(throws: TemplateError.self) { try template("{\"family\": ") }
        #expect(broken?.message.hasPrefix("task-definition template taskdefs/t.json is not valid JSON") == true)
        let missing = #expect(throws: TemplateError.self) {
            try TaskDefinitionTemplate(contentsOf: URL(filePath: "/nonexistent/x.json"), path: "taskdefs/x.json")
        }
        #expect(missing?.message == "task-definition template taskdefs/x.json does not exist (looked at /nonexistent/x.json)")
    }

    @Test func theShapesAreCurrentWithBotocoreOnThisMachine() throws {
        let generated = try runProcess(
            URL(filePath: "/usr/bin/env"), ["python3", Project.root.appending(path: "runner/dev/gen-ecs-shapes").path, "-"])
        try #require(generated.status == 0, "runner/dev/gen-ecs-shapes failed: \(generated.stderr)")
        let committed = try String(
            contentsOf: Project.root.appending(path: "Sources/Stages/TaskDefinition/ECSShapes.swift"), encoding: .utf8)
        // The first line names the botocore version; the shapes are what must match.
        let body = { (text: String) in text.split(separator: "\n").dropFirst().joined(separator: "\n") }
        #expect(body(generated.stdout) == body(committed), "run runner/dev/gen-ecs-shapes to regenerate")
    }
}
