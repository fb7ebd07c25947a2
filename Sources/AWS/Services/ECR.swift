import Foundation

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

    /// What GetAuthorizationToken hands out: basic-auth credentials for the registry, where it is, and until when.
    public struct Authorization: Sendable, Equatable {
        /// The user name (`AWS`).
        public let username: String
        /// The password (a token).
        public let password: String
        /// The registry's URL (`https://ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
        public let proxyEndpoint: String
        /// When the token stops working.
        public let expiresAt: Date
    }

    struct AuthorizationData: Decodable {
        struct Entry: Decodable {
            let authorizationToken: String
            let expiresAt: Double
            let proxyEndpoint: String
        }
        let authorizationData: [Entry]
    }

    struct Images: Decodable {
        struct Image: Decodable {
            let imageDigest: String
            let imageTags: [String]?
        }
        let imageDetails: [Image]
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

extension AWSClient {
    /// ECR GetAuthorizationToken: registry credentials for the account's registry.
    public func ecrAuthorization() async throws(AWSError) -> ECR.Authorization {
        let answer = try await json(
            .ecr, targetPrefix: ECR.targetPrefix, operation: "GetAuthorizationToken", input: [String: String](), as: ECR.AuthorizationData.self)
        guard let entry = answer.authorizationData.first,
            let decoded = Data(base64Encoded: entry.authorizationToken).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        else {
            throw AWSError(service: "ecr", operation: "GetAuthorizationToken", code: "Decoding", message: "no usable authorization token in the answer", requestID: nil, status: 200)
        }
        return ECR.Authorization(
            username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]), proxyEndpoint: entry.proxyEndpoint,
            expiresAt: Date(timeIntervalSince1970: entry.expiresAt))
    }

    /// ECR DescribeImages: the tags of the image `digest` in `repository`, or nil when ECR does not have it.
    public func imageTags(repository: String, digest: String) async throws(AWSError) -> [String]? {
        do {
            let answer = try await json(
                .ecr, targetPrefix: ECR.targetPrefix, operation: "DescribeImages",
                input: DescribeImages(repositoryName: repository, imageIds: [["imageDigest": digest]]), as: ECR.Images.self)
            return answer.imageDetails.first.map { $0.imageTags ?? [] }
        } catch where error.code == "ImageNotFoundException" {
            return nil
        }
    }

    /// ECR DescribeImages by tag: the digest `tag` names in `repository`, or nil when there is no such image.
    public func imageDigest(repository: String, tag: String) async throws(AWSError) -> String? {
        do {
            let answer = try await json(
                .ecr, targetPrefix: ECR.targetPrefix, operation: "DescribeImages",
                input: DescribeImages(repositoryName: repository, imageIds: [["imageTag": tag]]), as: ECR.Images.self)
            return answer.imageDetails.first?.imageDigest
        } catch where error.code == "ImageNotFoundException" {
            return nil
        }
    }

    private struct DescribeImages: Encodable {
        let repositoryName: String
        let imageIds: [[String: String]]
    }
}
