import AWS
import Foundation
import PipelineDSL
import StageContract

/// The register stage: renders the service's task definition for the environment and registers it, or reuses the
/// latest active revision when it already says the same.
enum RegisterStage {
    static func run(_ spec: RegisterTaskDefinitionSpec, _ context: StageContext) async -> Int32 {
        do {
            let result = try await register(spec, context)
            print(result.reused
                ? "task definition unchanged: reusing \(result.taskDefinitionArn)"
                : "registered \(result.taskDefinitionArn)")
            try context.outputs.set(result)
            return 0
        } catch {
            StageContext.fail("registering the task definition of \(spec.service): \(error)")
            return 1
        }
    }

    /// The file the rendered definition is kept in, in the stage's artifacts: the deployment claim carries it.
    static let renderedFile = "task-definition.json"

    static func register(_ spec: RegisterTaskDefinitionSpec, _ context: StageContext) async throws -> RegisterOutput {
        let plan = context.plan
        guard let service = plan.service(named: spec.service) else { throw StageError("the plan has no service \(spec.service)") }
        let client = try context.awsClient()
        let image: String
        var sourceSha = context.run.sha ?? ""
        if let push = spec.pushStage {
            image = try context.output(PushOutput.self, of: push).image
            if let since = try context.buildOutput(behindPush: push)?.since { sourceSha = since }
        } else {
            let tag = try context.fill("{sha}", field: "the image tag")
            image = "\(try await client.repositoryURI(spec.repository)):\(tag)"
        }
        if spec.verifyImage ?? true {
            try await ImagePresence.require(image, repository: spec.repository, aws: client, environment: context.processEnvironment)
        }
        let template = try TaskDefinitionTemplate(contentsOf: context.folder.pipelineFile(spec.template), path: spec.template)
        var values = TaskDefinitionTemplate.values(environment: plan.environment, service: service)
        values["image"] = image
        values["sha"] = context.run.sha ?? ""
        values["sourceSha"] = sourceSha
        let rendered = try template.render(values)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let body = try encoder.encode(rendered)
        try body.write(to: context.artifacts.appending(path: renderedFile))
        guard case .object(let request) = rendered, case .string(let family)? = request["family"] else {
            throw StageError("the rendered template has no family")
        }
        if let latest = try await latestActive(family: family, client: client), rendered.isSubset(of: latest.body) {
            return RegisterOutput(taskDefinitionArn: latest.arn, image: image, reused: true)
        }
        let registered = try await client.registerTaskDefinition(body)
        return RegisterOutput(taskDefinitionArn: registered.taskDefinitionArn, image: image, reused: false)
    }

    /// The latest ACTIVE revision of `family` as ECS describes it, if there is one: DescribeTaskDefinition takes a
    /// family for its latest ACTIVE revision, one call where listing the family and describing its newest were two.
    private static func latestActive(family: String, client: AWSClient) async throws -> (arn: String, body: JSONValue)? {
        let described: DescribedDefinition?
        do throws(AWSError) {
            described = try await DescribedDefinition.fetch(family, client: client)
        } catch {
            guard error.code == "ClientException" else { throw error }
            return nil  // the family has no ACTIVE revision (ECS says so with a ClientException)
        }
        // Only an ACTIVE revision is reused.
        guard let body = described?.body, case .string(let arn)? = body["taskDefinitionArn"],
            body["status"] == nil || body["status"] == .string("ACTIVE")
        else { return nil }
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
