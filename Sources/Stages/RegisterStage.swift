import AWS
import Foundation
import PipelineDSL

/// The register stage: renders the service's task definition for the environment and registers it, or reuses the
/// latest active revision when it already says the same.
enum RegisterStage {
    static func run(_ spec: RegisterTaskDefinitionSpec, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        do {
            let result = try await register(spec, plan: plan, runFolder: runFolder, environment: environment)
            print(result.reused
                ? "task definition unchanged: reusing \(result.arn)"
                : "registered \(result.arn)")
            try StageOutputFile(environment: environment).set(
                ["taskDefinitionArn": result.arn, "image": result.image, "reused": String(result.reused)])
            return 0
        } catch {
            FileHandle.standardError.write(Data("error: registering the task definition of \(spec.service): \(error)\n".utf8))
            return 1
        }
    }

    struct Result {
        let arn: String
        let image: String
        let reused: Bool
    }

    static func register(_ spec: RegisterTaskDefinitionSpec, plan: Plan, runFolder: URL, environment: [String: String]) async throws -> Result {
        guard let service = plan.service(named: spec.service) else { throw StageError("the plan has no service \(spec.service)") }
        let client = try StageAWS.client(for: plan.environment, environment: environment)
        let sha = environment["PIPELINE_SHA"] ?? ""
        let image: String
        if let push = spec.pushStage {
            guard let pushed = BuiltinStages.outputs(of: push, in: runFolder)["image"] else {
                throw StageError("the push stage \(push) left no image output")
            }
            image = pushed
        } else {
            guard !sha.isEmpty else { throw StageError("the run has no commit SHA to tag the image with") }
            image = "\(try await client.repositoryURI(spec.repository)):\(sha)"
        }
        if spec.verifyImage ?? true {
            try await ImagePresence.require(image, repository: spec.repository, aws: client, environment: environment)
        }
        let template = try TaskDefinitionTemplate(
            contentsOf: runFolder.appending(path: "pipelines").appending(path: spec.template), path: spec.template)
        var values = TaskDefinitionTemplate.values(environment: plan.environment, service: service)
        values["image"] = image
        values["sha"] = sha
        let rendered = try template.render(values)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let body = try encoder.encode(rendered)
        if let artifacts = environment["PIPELINE_ARTIFACTS"] {
            try body.write(to: URL(filePath: artifacts).appending(path: "task-definition.json"))
        }
        guard case .object(let request) = rendered, case .string(let family)? = request["family"] else {
            throw StageError("the rendered template has no family")
        }
        if let latest = try await latestActive(family: family, client: client), rendered.isSubset(of: latest.body) {
            return Result(arn: latest.arn, image: image, reused: true)
        }
        let registered = try await client.registerTaskDefinition(body)
        return Result(arn: registered.taskDefinitionArn, image: image, reused: false)
    }

    /// The latest ACTIVE revision of `family` as ECS describes it, if there is one.
    private static func latestActive(family: String, client: AWSClient) async throws -> (arn: String, body: JSONValue)? {
        struct Input: Encodable {
            let taskDefinition: String
            let include = ["TAGS"]
        }
        struct Described: Decodable {
            let taskDefinition: JSONValue
            let tags: JSONValue?
        }
        guard let arn = try await client.listTaskDefinitions(family: family).first else { return nil }
        let described = try await client.json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DescribeTaskDefinition", input: Input(taskDefinition: arn),
            as: Described.self)
        // ECS answers the tags beside the definition, not in it.
        guard case .object(var body) = described.taskDefinition else { return nil }
        if let tags = described.tags { body["tags"] = tags }
        return (arn, .object(body))
    }
}

extension JSONValue {
    /// Whether everything this value says, `other` says too (objects may have more keys: ECS adds defaults).
    func isSubset(of other: JSONValue) -> Bool {
        switch (self, other) {
        case (.object(let mine), .object(let theirs)):
            return mine.allSatisfy { key, value in theirs[key].map { value.isSubset(of: $0) } ?? false }
        case (.array(let mine), .array(let theirs)):
            return mine.count == theirs.count && zip(mine, theirs).allSatisfy { $0.isSubset(of: $1) }
        case (.integer(let a), .number(let b)): return Double(a) == b
        case (.number(let a), .integer(let b)): return a == Double(b)
        default: return self == other
        }
    }
}
