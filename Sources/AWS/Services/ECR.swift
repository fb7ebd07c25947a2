/// The ECR API calls (JSON 1.1, `AmazonEC2ContainerRegistry_V20150921`).
public enum ECR {
    static let targetPrefix = "AmazonEC2ContainerRegistry_V20150921"

    struct Repositories: Decodable {
        struct Repository: Decodable {
            let repositoryName: String
            let repositoryUri: String
        }
        let repositories: [Repository]
    }
}

extension AWSClient {
    /// ECR DescribeRepositories: the URI images of `repository` are pulled by (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`).
    public func repositoryURI(_ repository: String) async throws(AWSError) -> String {
        let output = try await json(
            .ecr, targetPrefix: ECR.targetPrefix, operation: "DescribeRepositories", input: ["repositoryNames": [repository]],
            as: ECR.Repositories.self)
        guard let found = output.repositories.first(where: { $0.repositoryName == repository }) else {
            throw AWSError(
                service: "ecr", operation: "DescribeRepositories", code: "RepositoryNotFoundException",
                message: "no repository \(repository)", requestID: nil, status: 200)
        }
        return found.repositoryUri
    }
}
