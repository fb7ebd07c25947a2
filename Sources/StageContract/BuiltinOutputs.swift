/// A built-in stage kind's outputs: written by the stage as Codable, published by the runner as `outputs/STAGE.json`,
/// read back as Codable by later built-in stages (`StageContext.output(_:of:)`), and handed to shell stages as
/// `PIPELINE_OUTPUT_<STAGE>_<KEY>` like any other output. Each property is one key; a Bool is `true`/`false`.
public protocol StageOutput: Codable, Sendable {}

/// The build stage's outputs.
public struct BuildOutput: StageOutput, Equatable {
    /// The OCI layout the image was exported to.
    public var image: String
    /// The image's reference in that layout.
    public var ref: String?
    /// The builder that made it (`buildah`, `docker`).
    public var builder: String?
    /// The build key (see the build stage): what the image is made of, as one hash.
    public var key: String?
    /// Set when nothing was built: the digest of the image the registry already had for the key (then `image` is
    /// that image in the registry, `REPOSITORY_URI@sha256:...`).
    public var reused: String?
    /// The commit that last changed what the key covers.
    public var since: String?
    /// Built whatever the registry had (`--rebuild`, `alwaysBuild`): the push moves the key's tag to this image.
    public var forced: Bool?

    public init(image: String, ref: String?, builder: String?, key: String? = nil, reused: String? = nil, since: String? = nil) {
        self.image = image
        self.ref = ref
        self.builder = builder
        self.key = key
        self.reused = reused
        self.since = since
    }
}

/// The push stage's outputs.
public struct PushOutput: StageOutput, Equatable {
    /// The pushed image by digest (`REPOSITORY_URI@sha256:...`), as task definitions name it.
    public var image: String
    /// The manifest's digest.
    public var digest: String
    /// The tags set, comma-separated.
    public var tags: String?
    /// The registry's host.
    public var registry: String?

    public init(image: String, digest: String, tags: String?, registry: String?) {
        self.image = image
        self.digest = digest
        self.tags = tags
        self.registry = registry
    }
}

/// The register stage's outputs.
public struct RegisterOutput: StageOutput, Equatable {
    /// The task definition the service is to run.
    public var taskDefinitionArn: String
    /// The image it runs.
    public var image: String
    /// Whether an identical ACTIVE revision was reused instead of registering a new one.
    public var reused: Bool

    public init(taskDefinitionArn: String, image: String, reused: Bool) {
        self.taskDefinitionArn = taskDefinitionArn
        self.image = image
        self.reused = reused
    }
}

/// The deploy (UpdateService) stage's outputs.
public struct DeployOutput: StageOutput, Equatable {
    /// What the service ran before the run first changed it.
    public var previousTaskDefinition: String
    /// The task definition the service was pointed at.
    public var taskDefinitionArn: String
    /// The ECS deployment the update started, when ECS said.
    public var deploymentId: String?
    /// Whether the rollout was waited for and finished.
    public var stable: Bool?

    public init(previousTaskDefinition: String, taskDefinitionArn: String, deploymentId: String? = nil, stable: Bool? = nil) {
        self.previousTaskDefinition = previousTaskDefinition
        self.taskDefinitionArn = taskDefinitionArn
        self.deploymentId = deploymentId
        self.stable = stable
    }
}

/// The DNS stage's outputs.
public struct DNSOutput: StageOutput, Equatable {
    /// Whether a change was sent (false: the record already said the same).
    public var changed: Bool
    /// Route 53's change id, when one was sent.
    public var changeId: String?

    public init(changed: Bool, changeId: String?) {
        self.changed = changed
        self.changeId = changeId
    }
}

/// The health-check stage's outputs.
public struct HealthOutput: StageOutput, Equatable {
    /// The result.
    public var healthy: Bool
    /// How many probes it took.
    public var attempts: Int?

    public init(healthy: Bool, attempts: Int?) {
        self.healthy = healthy
        self.attempts = attempts
    }
}

/// The `pipeline rollback` stage's outputs.
public struct RollbackOutput: StageOutput, Equatable {
    /// The task definition the service runs again (a new revision when the old one was INACTIVE).
    public var taskDefinitionArn: String
    /// Its image.
    public var image: String
    /// The commit it deploys.
    public var sha: String
    /// `true`, `false`, or `unchecked` (no health check).
    public var healthy: String

    public init(taskDefinitionArn: String, image: String, sha: String, healthy: String) {
        self.taskDefinitionArn = taskDefinitionArn
        self.image = image
        self.sha = sha
        self.healthy = healthy
    }
}

/// What a deploy or health-check stage that changed a service and then failed (or was cancelled) did about it,
/// beside that stage's own outputs: put the service back, or left it, and why.
public struct RollbackReport: StageOutput, Equatable {
    /// Whether the service was put back on what it ran before the run.
    public var rolledBack: Bool
    /// The task definition it runs again.
    public var rolledBackTo: String?
    /// Its image, when known.
    public var rolledBackImage: String?
    /// `true`, `false`, or `unchecked`.
    public var rollbackHealthy: String?
    /// Why putting it back failed.
    public var rollbackError: String?
    /// The revision a cancelled stage left the service on (`--on-cancel leave`).
    public var cancelledDuring: String?

    public init(
        rolledBack: Bool, rolledBackTo: String? = nil, rolledBackImage: String? = nil, rollbackHealthy: String? = nil,
        rollbackError: String? = nil, cancelledDuring: String? = nil
    ) {
        self.rolledBack = rolledBack
        self.rolledBackTo = rolledBackTo
        self.rolledBackImage = rolledBackImage
        self.rollbackHealthy = rollbackHealthy
        self.rollbackError = rollbackError
        self.cancelledDuring = cancelledDuring
    }
}
