import AWS
import Foundation
import OCI
import Synchronization

/// Registry credentials from ECR GetAuthorizationToken, fetched when first needed and again when they near expiry
/// or the registry refuses them.
final class ECRRegistryCredentials: RegistryCredentialSource, Sendable {
    private let client: AWSClient
    private let current = Mutex<(credentials: RegistryCredentials, validUntil: Date)?>(nil)

    init(client: AWSClient) { self.client = client }

    func credentials(refresh: Bool) async throws -> RegistryCredentials? {
        if !refresh, let current = current.withLock({ $0 }), current.validUntil.timeIntervalSinceNow > 5 * 60 {
            return current.credentials
        }
        // The token is good until the expiry ECR gives (12 hours on); one already past is used once and fetched again.
        let authorization = try await client.ecrAuthorization()
        let credentials = RegistryCredentials(username: authorization.username, password: authorization.password)
        current.withLock { $0 = (credentials, authorization.expiresAt) }
        return credentials
    }
}

/// Where a service's images go: the registry's URL (ECR's, or `PIPELINE_REGISTRY` for local runs), the credentials
/// (`PIPELINE_REGISTRY_USERNAME`/`PIPELINE_REGISTRY_PASSWORD`, else ECR's), and the URI task definitions name images
/// by (the ECR repository's).
public struct RegistryTarget: Sendable {
    /// The client for the repository.
    public let client: RegistryClient
    /// The URI images are named by in task definitions (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY`).
    public let repositoryURI: String

    /// The target for `repository`. With `explicit` (a registry URL) ECR is not asked at all: the credentials are
    /// the `PIPELINE_REGISTRY_*` ones or none.
    public static func resolve(
        repository: String, aws: AWSClient?, environment: [String: String], registry explicit: String? = nil, allowInsecure: Bool = false
    ) async throws -> RegistryTarget {
        let insecure = allowInsecure || environment["PIPELINE_REGISTRY_INSECURE"] == "1"
        let named = environment["PIPELINE_REGISTRY_USERNAME"].flatMap { user in
            environment["PIPELINE_REGISTRY_PASSWORD"].map { RegistryCredentials(username: user, password: $0) }
        }
        guard let aws, explicit == nil else {
            guard let explicit else { throw StageError("no registry: name one, or give AWS credentials for ECR") }
            let client = try RegistryClient(base: explicit, repository: repository, credentials: StaticRegistryCredentials(named), allowInsecure: insecure)
            return RegistryTarget(client: client, repositoryURI: "\(client.host)/\(repository)")
        }
        let found: Result<String, AWSError>
        do throws(AWSError) { found = .success(try await aws.repositoryURI(repository)) } catch { found = .failure(error) }
        if case .failure(let error) = found, error.code == "RepositoryNotFoundException" {
            throw StageError(
                "the ECR repository \(repository) does not exist in region \(aws.configuration.region); create it with the platform's infrastructure first (pipeline does not create repositories)")
        }
        let repositoryURI = try found.get()
        let source: any RegistryCredentialSource = named.map { StaticRegistryCredentials($0) } ?? ECRRegistryCredentials(client: aws)
        let base: String
        if let local = environment["PIPELINE_REGISTRY"], !local.isEmpty {
            base = local
        } else {
            base = "https://" + (repositoryURI.split(separator: "/").first.map(String.init) ?? repositoryURI)
        }
        return RegistryTarget(
            client: try RegistryClient(base: base, repository: repository, credentials: source, allowInsecure: insecure), repositoryURI: repositoryURI)
    }
}
