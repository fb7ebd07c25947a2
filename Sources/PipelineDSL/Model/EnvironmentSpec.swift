/// One place the pipeline deploys to, as plan data.
public struct EnvironmentSpec: Codable, Sendable, Equatable {
    /// The environment's name, as given to `pipeline run`.
    public var name: String
    /// The git branch whose tip this environment deploys by default.
    public var branch: String
    /// The AWS region.
    public var region: String
    /// The AWS account id the environment lives in, when the pipeline pins it.
    public var account: String?
    /// The IAM role to assume before any AWS call for this environment.
    public var role: RoleSpec?
    /// The ECS cluster's name.
    public var cluster: String
    /// The Route 53 hosted zone and the domain that services' records live under.
    public var dns: DNSSpec?
    /// The ECS service name of each pipeline service; `{service}` stands for the pipeline service's name.
    public var serviceNamePattern: String
    /// Free variables the templates and stages can use as `{var.NAME}`.
    public var variables: [String: String]
    /// What runs started by new commits (hooks, `pipeline watch`) do when several queue up (nil: every one, in
    /// order).
    public var commitQueue: CommitQueue?
    /// Whether approvals here must carry an identity the server verified (a signed-in user or an API token): a
    /// local `pipeline approve` (whose identity is only the operating-system user or a variable) is refused.
    public var verifiedApprovals: Bool?
    /// The environment whose healthy deploys are the only images this one deploys (nil: it builds its own). A run
    /// here builds nothing: each service's image must be the one a deploy there verified for the same build key.
    public var verifiedIn: String?

    /// Creates an environment spec.
    public init(
        name: String, branch: String, region: String, account: String? = nil, role: RoleSpec? = nil,
        cluster: String, dns: DNSSpec? = nil, serviceNamePattern: String = "{service}",
        variables: [String: String] = [:]
    ) {
        self.name = name
        self.branch = branch
        self.region = region
        self.account = account
        self.role = role
        self.cluster = cluster
        self.dns = dns
        self.serviceNamePattern = serviceNamePattern
        self.variables = variables
    }

    /// How an environment takes commits that arrive while a run of it is going on.
    public enum CommitQueue: String, Codable, Sendable, Equatable {
        /// Every commit gets its run, in order.
        case everyCommit
        /// Only the newest waiting commit runs; older waiting runs end as superseded.
        case newestOnly
    }

    /// The ECS service name of a pipeline service in this environment.
    public func ecsServiceName(for service: String) -> String {
        serviceNamePattern.replacingAll("{service}", with: service)
    }
}

/// An IAM role to assume.
public struct RoleSpec: Codable, Sendable, Equatable {
    /// The role's ARN.
    public var arn: String
    /// The external id the role's trust policy asks for, if any.
    public var externalId: String?
    /// The session name shown in CloudTrail.
    public var sessionName: String?

    /// Creates a role spec.
    public init(arn: String, externalId: String? = nil, sessionName: String? = nil) {
        self.arn = arn
        self.externalId = externalId
        self.sessionName = sessionName
    }
}

/// A Route 53 hosted zone and the domain under it that service records use.
public struct DNSSpec: Codable, Sendable, Equatable {
    /// The hosted zone's name (`comyno.net`) or id (`Z0123456789`).
    public var zone: String
    /// The domain service records are made under (`staging.comyno.net`).
    public var domain: String

    /// Creates a DNS spec.
    public init(zone: String, domain: String) {
        self.zone = zone
        self.domain = domain
    }
}

extension String {
    /// Replaces every occurrence of `target` with `replacement`, without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
