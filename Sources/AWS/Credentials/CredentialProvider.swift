import Foundation
import HTTP

/// Where credentials come from, as the AWS CLI's chain finds them. Each source but `fixed` gives temporary
/// credentials, which the provider caches and fetches again before they expire.
public indirect enum CredentialSource: Sendable, CustomStringConvertible {
    /// Keys given as they are (environment variables, a profile's keys); `origin` says where.
    case fixed(AWSCredentials, origin: String)
    /// A profile's `credential_process`: a command that prints the credentials as JSON.
    case process(command: String, profile: String)
    /// STS AssumeRole with the credentials of `source`.
    case assumeRole(RoleRequest, source: CredentialSource)
    /// STS AssumeRoleWithWebIdentity with the token in `tokenFile` (an unsigned call).
    case webIdentity(roleARN: String, tokenFile: String, sessionName: String)
    /// The ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_*_URI`).
    case container(url: String, token: String?, tokenFile: String?)
    /// The EC2 instance metadata service, version 2 (a session token first).
    case instanceMetadata(endpoint: String, timeout: Double, attempts: Int)

    /// What `pipeline aws whoami` says of it.
    public var description: String {
        switch self {
        case .fixed(_, let origin): origin
        case .process(let command, let profile): "credential_process of profile \(profile) (\(command.split(separator: " ").first ?? ""))"
        case .assumeRole(let role, let source): "role \(role.arn) assumed with \(source)"
        case .webIdentity(let arn, let file, _): "role \(arn) assumed with the web identity token in \(file)"
        case .container(let url, _, _): "the container credentials endpoint \(URLText.redacted(url))"
        case .instanceMetadata(let endpoint, _, _): "the instance metadata service at \(endpoint)"
        }
    }
}

/// What AssumeRole is asked for.
public struct RoleRequest: Sendable, Equatable {
    /// The role's ARN.
    public var arn: String
    /// The session name (shows in CloudTrail).
    public var sessionName: String
    /// The external id the role's trust policy may require.
    public var externalID: String?
    /// Seconds the session lasts (AWS's default when nil: one hour).
    public var durationSeconds: Int?

    /// A request for `arn`.
    public init(arn: String, sessionName: String, externalID: String? = nil, durationSeconds: Int? = nil) {
        self.arn = arn
        self.sessionName = sessionName
        self.externalID = externalID
        self.durationSeconds = durationSeconds
    }
}

/// Hands out credentials from one source: fixed ones as they are, temporary ones cached and fetched again five
/// minutes before they expire (one fetch at a time, however many requests wait for it).
public final class CredentialProvider: Sendable, CustomStringConvertible {
    /// The source.
    public let source: CredentialSource
    let region: String
    let environment: [String: String]
    private let cache = CredentialCache()

    /// Seconds before expiry at which credentials are fetched again.
    public static let refreshMargin: TimeInterval = 5 * 60

    /// A provider over `source`; `region` and `environment` reach STS for the role sources.
    public init(_ source: CredentialSource, region: String, environment: [String: String]) {
        self.source = source
        self.region = region
        self.environment = environment
    }

    /// Where the credentials come from.
    public var description: String { source.description }

    /// Credentials that are valid for at least `refreshMargin` more (or do not expire).
    public func credentials(now: Date = Date()) async throws(AWSError) -> AWSCredentials {
        if case .fixed(let credentials, _) = source { return credentials }
        return try await cache.get(now: now) { () throws(AWSError) in
            try await CredentialFetch.fetch(self.source, region: self.region, environment: self.environment)
        }
    }
}

/// The cache of one provider; concurrent callers share one fetch.
private actor CredentialCache {
    private var current: AWSCredentials?
    private var fetching: Task<Result<AWSCredentials, AWSError>, Never>?

    func get(now: Date, fetch: @escaping @Sendable () async throws(AWSError) -> AWSCredentials) async throws(AWSError) -> AWSCredentials {
        if let current, current.expiration.map({ $0.timeIntervalSince(now) > CredentialProvider.refreshMargin }) ?? true {
            return current
        }
        let task: Task<Result<AWSCredentials, AWSError>, Never>
        if let fetching {
            task = fetching
        } else {
            task = Task {
                do throws(AWSError) { return .success(try await fetch()) } catch { return .failure(error) }
            }
            fetching = task
        }
        let result = await task.value
        fetching = nil
        let fresh = try result.get()
        current = fresh
        return fresh
    }
}
