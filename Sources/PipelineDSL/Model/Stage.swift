/// One step of a plan: what to run, after what, and under which limits.
public struct Stage: Codable, Sendable, Equatable {
    /// Unique within the plan (`user-service.build`).
    public var id: String
    /// The service this stage belongs to, for stages made by `EachService`.
    public var service: String?
    /// The stages that must succeed before this one starts.
    public var dependsOn: [String]
    /// How long one attempt may take, in seconds.
    public var timeoutSeconds: Double?
    /// How often a failed attempt is tried again, and how long to wait in between.
    public var retry: RetryPolicy?
    /// A condition checked when the run starts; the stage is skipped (and counts as done) when it is false.
    public var condition: Condition?
    /// Secrets the stage gets as environment variables, as references resolved only at run time.
    public var secrets: [SecretBinding]
    /// Extra environment variables for the stage's process.
    public var environment: [String: String]
    /// What the stage does; its kind decides the shape.
    public var spec: StageSpec

    /// The stage's kind, from its spec.
    public var kind: StageKind { spec.kind }

    /// Creates a stage.
    public init(
        id: String, service: String? = nil, dependsOn: [String] = [], timeoutSeconds: Double? = nil,
        retry: RetryPolicy? = nil, condition: Condition? = nil, secrets: [SecretBinding] = [],
        environment: [String: String] = [:], spec: StageSpec
    ) {
        self.id = id
        self.service = service
        self.dependsOn = dependsOn
        self.timeoutSeconds = timeoutSeconds
        self.retry = retry
        self.condition = condition
        self.secrets = secrets
        self.environment = environment
        self.spec = spec
    }
}

/// How a failed stage is tried again.
public struct RetryPolicy: Codable, Sendable, Equatable {
    /// Further attempts after the first one fails.
    public var attempts: Int
    /// Seconds to wait before the first retry; each later retry waits twice as long.
    public var backoffSeconds: Double

    /// Creates a retry policy.
    public init(attempts: Int, backoffSeconds: Double) {
        self.attempts = attempts
        self.backoffSeconds = backoffSeconds
    }
}

/// A secret handed to a stage as an environment variable.
public struct SecretBinding: Codable, Sendable, Equatable {
    /// The environment variable the stage sees.
    public var name: String
    /// Where the value is read from at run time.
    public var reference: SecretReference

    /// Creates a binding.
    public init(name: String, reference: SecretReference) {
        self.name = name
        self.reference = reference
    }
}

/// Where a secret's value lives. The plan carries only this reference, never the value.
public struct SecretReference: Codable, Sendable, Equatable, Hashable {
    /// The kinds of secret store.
    public enum Store: String, Codable, Sendable {
        /// An environment variable of the runner's process.
        case environment
        /// An AWS Secrets Manager secret, by ARN or name.
        case secretsManager
    }

    /// The store.
    public var store: Store
    /// The variable name, or the secret's ARN or name.
    public var name: String
    /// For a Secrets Manager secret holding JSON, the key whose value is wanted.
    public var jsonKey: String?

    /// A secret read from the runner's environment variable `name`.
    public static func environment(_ name: String) -> SecretReference {
        SecretReference(store: .environment, name: name, jsonKey: nil)
    }

    /// A secret read from AWS Secrets Manager, by ARN or name, optionally one key of its JSON value.
    public static func secretsManager(_ arnOrName: String, key: String? = nil) -> SecretReference {
        SecretReference(store: .secretsManager, name: arnOrName, jsonKey: key)
    }
}
