import AWS

/// A task definition as ECS describes it, with its tags beside it (DescribeTaskDefinition with `include: TAGS`), as
/// the JSON it is: what register compares a rendering with, and what a rollback registers again.
struct DescribedDefinition {
    /// The definition's fields, tags among them when it has any.
    let body: [String: JSONValue]

    /// `arnOrFamily` described; a family means its latest ACTIVE revision.
    static func fetch(_ arnOrFamily: String, client: AWSClient) async throws(AWSError) -> DescribedDefinition? {
        struct Input: Encodable {
            let taskDefinition: String
            let include = ["TAGS"]
        }
        struct Described: Decodable {
            let taskDefinition: JSONValue
            let tags: JSONValue?
        }
        let described = try await client.json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DescribeTaskDefinition", input: Input(taskDefinition: arnOrFamily),
            as: Described.self)
        guard case .object(var body) = described.taskDefinition else { return nil }
        // ECS answers the tags beside the definition, not in it.
        if let tags = described.tags { body["tags"] = tags }
        return DescribedDefinition(body: body)
    }
}
