/// An environment a pipeline deploys to, declared in a `Pipeline { }`.
///
/// ```swift
/// Environment("staging", branch: "staging", region: "us-east-1", cluster: "staging-cluster")
///     .dns(zone: "staging.comyno.net")
///     .serviceName("{service}-staging")
/// ```
public struct Environment: Sendable {
    /// The plan data this declaration makes.
    public private(set) var spec: EnvironmentSpec

    /// Declares an environment: its name, the branch it deploys, its AWS region and its ECS cluster.
    public init(_ name: String, branch: String, region: String, cluster: String) {
        spec = EnvironmentSpec(name: name, branch: branch, region: region, cluster: cluster)
    }

    /// Pins the AWS account id; a run refuses credentials of another account.
    public func account(_ id: String) -> Environment {
        with { $0.account = id }
    }

    /// Assumes this IAM role before every AWS call of this environment.
    public func assumeRole(_ arn: String, externalId: String? = nil, sessionName: String? = nil) -> Environment {
        with { $0.role = RoleSpec(arn: arn, externalId: externalId, sessionName: sessionName) }
    }

    /// The Route 53 hosted zone, and the domain service records are made under (the zone itself by default).
    public func dns(zone: String, domain: String? = nil) -> Environment {
        with { $0.dns = DNSSpec(zone: zone, domain: domain ?? zone) }
    }

    /// The ECS service name of each pipeline service; `{service}` stands for the pipeline service's name.
    public func serviceName(_ pattern: String) -> Environment {
        with { $0.serviceNamePattern = pattern }
    }

    /// A variable that stage settings and task-definition templates can use as `{var.NAME}`.
    public func variable(_ name: String, _ value: String) -> Environment {
        with { $0.variables[name] = value }
    }

    /// What runs started by new commits do when several queue up: `.everyCommit` (the default) deploys each in
    /// order, `.newestOnly` deploys only the newest (the others are recorded as superseded).
    public func onNewCommits(_ policy: EnvironmentSpec.CommitQueue) -> Environment {
        with { $0.commitQueue = policy }
    }

    /// Deploys only images a deploy to `environment` verified (passed its health check): a run here builds
    /// nothing, takes each service's image by its build key, and is refused before it starts when `environment`
    /// never verified what the commit builds.
    public func requiresVerified(in environment: String) -> Environment {
        with { $0.verifiedIn = environment }
    }

    /// Approvals of this environment's gates must come through `pipeline serve` from a signed-in user or an API
    /// token (`pipeline approve ENV --server`); a local `pipeline approve`, known only by its operating-system user or
    /// identity variable, is refused.
    public func requiresVerifiedApprovals() -> Environment {
        with { $0.verifiedApprovals = true }
    }

    /// Several variables at once; see ``variable(_:_:)``.
    public func variables(_ values: [String: String]) -> Environment {
        with { $0.variables.merge(values) { _, new in new } }
    }

    private func with(_ change: (inout EnvironmentSpec) -> Void) -> Environment {
        var copy = self
        change(&copy.spec)
        return copy
    }
}
