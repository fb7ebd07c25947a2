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
            image = "\(try await repositoryURI(spec.repository, client: client, folder: context.folder, environment: context.processEnvironment)):\(tag)"
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

    /// The hosts of the registries the run's images are in, by region and credentials, looked up once per run:
    /// every repository of an account's registry in a region is under one host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
    static let registries = RunLookup(kind: "registries") { host in
        !host.isEmpty && host.utf8.count < 256 && host.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }
    }

    /// The key of the registry that the credentials `environment` gives a stage reach in `region`: a stage with
    /// credentials of its own (another account) looks its registry up for itself.
    static func registryKey(_ region: String, environment: [String: String]) -> String {
        let who = ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"]
            .map { environment[$0] ?? "" }.joined(separator: "\n")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: a stable name for the file, not a secret's hash
        for byte in who.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(region)-\(String(hash, radix: 16))"
    }

    /// The URI images of `repository` are pulled by: the run's registry host (asked with DescribeRepositories by
    /// the first register stage of the run, for its own repository) and the repository's name.
    static func repositoryURI(
        _ repository: String, client: AWSClient, folder: RunFolder, environment: [String: String]
    ) async throws -> String {
        let host = try await registries.value(registryKey(client.configuration.region, environment: environment), folder: folder) {
            let uri = try await client.repositoryURI(repository)
            guard let slash = uri.firstIndex(of: "/"), uri[uri.index(after: slash)...] == repository else {
                throw StageError("ECR answered \(uri) as the URI of \(repository), not REGISTRY/\(repository)")
            }
            return String(uri[..<slash])
        }
        return "\(host)/\(repository)"
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
