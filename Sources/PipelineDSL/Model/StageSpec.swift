/// The kinds of stage a plan can hold.
public enum StageKind: String, Codable, Sendable, CaseIterable {
    /// Check the commit out into the run's workspace.
    case checkout
    /// Build a service's container image.
    case build
    /// Push a service's image to its ECR repository.
    case push
    /// Register the service's task definition, rendered for the environment.
    case registerTaskDefinition
    /// Point the ECS service at the new task definition and wait until it is stable.
    case updateService
    /// UPSERT the service's Route 53 record and wait until it is in sync.
    case dnsRecord
    /// Ask the deployed service whether it is healthy.
    case healthCheck
    /// Wait for people to approve.
    case approval
    /// Run a shell command.
    case shell
    /// Post a message to a webhook.
    case notify
    /// Put a service back on an earlier task definition (`pipeline rollback` makes these; pipelines do not).
    case rollback
}

/// What a stage does, one shape per kind.
public enum StageSpec: Sendable, Equatable {
    /// See ``StageKind/checkout``.
    case checkout(CheckoutSpec)
    /// See ``StageKind/build``.
    case build(BuildImageSpec)
    /// See ``StageKind/push``.
    case push(PushImageSpec)
    /// See ``StageKind/registerTaskDefinition``.
    case registerTaskDefinition(RegisterTaskDefinitionSpec)
    /// See ``StageKind/updateService``.
    case updateService(UpdateServiceSpec)
    /// See ``StageKind/dnsRecord``.
    case dnsRecord(DNSRecordSpec)
    /// See ``StageKind/healthCheck``.
    case healthCheck(HealthCheckSpec)
    /// See ``StageKind/approval``.
    case approval(ApprovalSpec)
    /// See ``StageKind/shell``.
    case shell(ShellSpec)
    /// See ``StageKind/notify``.
    case notify(NotifySpec)
    /// See ``StageKind/rollback``.
    case rollback(RollbackSpec)

    /// The kind of this spec.
    public var kind: StageKind {
        switch self {
        case .checkout: .checkout
        case .build: .build
        case .push: .push
        case .registerTaskDefinition: .registerTaskDefinition
        case .updateService: .updateService
        case .dnsRecord: .dnsRecord
        case .healthCheck: .healthCheck
        case .approval: .approval
        case .shell: .shell
        case .notify: .notify
        case .rollback: .rollback
        }
    }
}

/// Puts a service back on an earlier task definition, waits until it is stable there and checks its health.
public struct RollbackSpec: Codable, Sendable, Equatable {
    /// The pipeline service.
    public var service: String
    /// How the service is updated and waited for (cluster, ECS service name, limits).
    public var update: UpdateServiceSpec
    /// The task definition to go back to.
    public var taskDefinitionArn: String
    /// Its full definition as it was registered, to register again when that revision is no longer ACTIVE.
    public var taskDefinition: String?
    /// The commit whose image it runs.
    public var sha: String
    /// The image it runs.
    public var image: String?
    /// The health check to pass afterwards, if the service has one.
    public var healthCheck: HealthCheckSpec?
    /// The service's image repository and the moving tags its push sets (`{env}`): a healthy rollback moves them
    /// back to the image the service runs again.
    public var repository: String?
    public var movingTags: [String]?

    /// Creates a rollback spec.
    public init(
        service: String, update: UpdateServiceSpec, taskDefinitionArn: String, taskDefinition: String?, sha: String, image: String?,
        healthCheck: HealthCheckSpec?
    ) {
        self.service = service
        self.update = update
        self.taskDefinitionArn = taskDefinitionArn
        self.taskDefinition = taskDefinition
        self.sha = sha
        self.image = image
        self.healthCheck = healthCheck
    }
}

/// Checks the commit out into the run's workspace.
public struct CheckoutSpec: Codable, Sendable, Equatable {
    /// Also check out the repository's submodules.
    public var submodules: Bool

    /// Creates a checkout spec.
    public init(submodules: Bool = true) {
        self.submodules = submodules
    }
}

/// Builds a service's image, tagged with the commit's SHA.
public struct BuildImageSpec: Codable, Sendable, Equatable {
    /// The service being built.
    public var service: String
    /// How to build it.
    public var build: BuildSpec
    /// The tag the image gets; `{sha}` is the full commit SHA.
    public var tag: String
    /// Build even when the registry has the image of this build key (what the context, Dockerfile, arguments,
    /// target and builder make); by default an unchanged service is not built again.
    public var alwaysBuild: Bool
    /// A repository of the service's registry that holds the builder's layer cache (buildah's and podman's
    /// `--cache-from`/`--cache-to`), so that a step built on one host or in one run is not run again on another.
    /// Not part of the build key: where the cache lives changes nothing about the image.
    public var cacheRepository: String?

    /// Creates a build spec.
    public init(service: String, build: BuildSpec, tag: String = "{sha}", alwaysBuild: Bool = false, cacheRepository: String? = nil) {
        self.service = service
        self.build = build
        self.tag = tag
        self.alwaysBuild = alwaysBuild
        self.cacheRepository = cacheRepository
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        service = try container.decode(String.self, forKey: .service)
        build = try container.decode(BuildSpec.self, forKey: .build)
        tag = try container.decode(String.self, forKey: .tag)
        alwaysBuild = try container.decodeIfPresent(Bool.self, forKey: .alwaysBuild) ?? false
        cacheRepository = try container.decodeIfPresent(String.self, forKey: .cacheRepository)
    }
}

/// Pushes a built image to the service's ECR repository.
public struct PushImageSpec: Codable, Sendable, Equatable {
    /// The service whose image is pushed.
    public var service: String
    /// The ECR repository's name.
    public var repository: String
    /// The stage that built the image, whose output names it.
    public var buildStage: String?
    /// The tags to set; `{sha}` is the full commit SHA, `{shortSha}` its first 12 characters, `{env}` the
    /// environment's name. A tag that already points at another image is refused (tags are immutable).
    public var tags: [String]
    /// Tags that follow the newest image pushed (`{env}`: `sv-user:staging`), moved without asking.
    public var movingTags: [String]?
    /// Move any tag that already points at another digest, instead of refusing.
    public var force: Bool

    /// Creates a push spec.
    public init(
        service: String, repository: String, buildStage: String?, tags: [String] = ["{sha}"], movingTags: [String]? = nil,
        force: Bool = false
    ) {
        self.service = service
        self.repository = repository
        self.buildStage = buildStage
        self.tags = tags
        self.movingTags = movingTags
        self.force = force
    }
}

/// Registers the service's task definition, rendered from its template.
public struct RegisterTaskDefinitionSpec: Codable, Sendable, Equatable {
    /// The service.
    public var service: String
    /// The template, relative to the pipelines folder.
    public var template: String
    /// The ECR repository of the image.
    public var repository: String
    /// The push stage whose digest output becomes the image; without one, the image is `repository:{sha}`.
    public var pushStage: String?
    /// Check that the registry has the image before registering (nil: yes).
    public var verifyImage: Bool?

    /// Creates a register spec.
    public init(service: String, template: String, repository: String, pushStage: String?, verifyImage: Bool? = nil) {
        self.service = service
        self.template = template
        self.repository = repository
        self.pushStage = pushStage
        self.verifyImage = verifyImage
    }
}

/// Points the ECS service at a task definition and waits until the service is stable on it.
public struct UpdateServiceSpec: Codable, Sendable, Equatable {
    /// The pipeline service.
    public var service: String
    /// The ECS cluster.
    public var cluster: String
    /// The ECS service's name in that cluster.
    public var ecsService: String
    /// The stage whose output is the task-definition ARN.
    public var registerStage: String?
    /// Wait until the deployment is stable before the stage succeeds.
    public var waitForStable: Bool
    /// Give up waiting after this many seconds in all.
    public var waitTimeoutSeconds: Double
    /// Give up when nothing moved for this many seconds.
    public var noProgressTimeoutSeconds: Double
    /// Seconds between two looks at the service.
    public var pollIntervalSeconds: Double

    /// Creates an update spec.
    public init(
        service: String, cluster: String, ecsService: String, registerStage: String?, waitForStable: Bool = true,
        waitTimeoutSeconds: Double = 900, noProgressTimeoutSeconds: Double = 300, pollIntervalSeconds: Double = 2
    ) {
        self.service = service
        self.cluster = cluster
        self.ecsService = ecsService
        self.registerStage = registerStage
        self.waitForStable = waitForStable
        self.waitTimeoutSeconds = waitTimeoutSeconds
        self.noProgressTimeoutSeconds = noProgressTimeoutSeconds
        self.pollIntervalSeconds = pollIntervalSeconds
    }
}

/// UPSERTs a Route 53 record and waits until the change is in sync.
public struct DNSRecordSpec: Codable, Sendable, Equatable {
    /// The service the record points at.
    public var service: String?
    /// The hosted zone's name or id.
    public var zone: String
    /// The record's full name (`user-service.staging.comyno.net`).
    public var name: String
    /// The record.
    public var record: DNSRecordValue
    /// Wait until Route 53 reports the change INSYNC.
    public var waitForSync: Bool

    /// Creates a DNS record spec.
    public init(service: String?, zone: String, name: String, record: DNSRecordValue, waitForSync: Bool = true) {
        self.service = service
        self.zone = zone
        self.name = name
        self.record = record
        self.waitForSync = waitForSync
    }
}

/// What a Route 53 record holds.
public struct DNSRecordValue: Codable, Sendable, Equatable {
    /// `CNAME`, `A`, `AAAA` or `TXT`, for a plain record; `A` or `AAAA` for an alias.
    public var type: String
    /// The values of a plain record.
    public var values: [String]
    /// Seconds, for a plain record.
    public var ttl: Int?
    /// The target of an alias record (a load balancer), when this is one.
    public var alias: AliasTarget?

    /// A CNAME to `target`.
    public static func cname(_ target: String, ttl: Int = 60) -> DNSRecordValue {
        DNSRecordValue(type: "CNAME", values: [target], ttl: ttl, alias: nil)
    }

    /// An A record with the given addresses.
    public static func a(_ addresses: [String], ttl: Int = 60) -> DNSRecordValue {
        DNSRecordValue(type: "A", values: addresses, ttl: ttl, alias: nil)
    }

    /// An A alias to a load balancer (or any alias target) in the given hosted zone.
    public static func alias(dnsName: String, hostedZoneId: String, evaluateTargetHealth: Bool = true) -> DNSRecordValue {
        DNSRecordValue(
            type: "A", values: [], ttl: nil,
            alias: AliasTarget(dnsName: dnsName, hostedZoneId: hostedZoneId, evaluateTargetHealth: evaluateTargetHealth))
    }
}

/// The target of a Route 53 alias record.
public struct AliasTarget: Codable, Sendable, Equatable {
    /// The target's DNS name.
    public var dnsName: String
    /// The target's own hosted zone id (for a load balancer, its canonical hosted zone).
    public var hostedZoneId: String
    /// Let Route 53 answer only while the target is healthy.
    public var evaluateTargetHealth: Bool
}

/// Asks a deployed service whether it is healthy, until it is or a deadline passes.
public struct HealthCheckSpec: Codable, Sendable, Equatable {
    /// The service checked.
    public var service: String
    /// How it is asked.
    public var probe: HealthProbe
    /// The host to ask; by default the service's DNS name.
    public var host: String
    /// The port to ask.
    public var port: Int
    /// Seconds one attempt may take.
    public var attemptTimeoutSeconds: Double
    /// Seconds between attempts.
    public var intervalSeconds: Double
    /// Seconds after which the check fails, however many attempts were made.
    public var deadlineSeconds: Double
    /// Successes in a row needed to call the service healthy.
    public var consecutiveSuccesses: Int
    /// Put the service back on its previous task definition when the check fails.
    public var rollbackOnFailure: Bool

    /// Creates a health-check spec.
    public init(
        service: String, probe: HealthProbe, host: String, port: Int, attemptTimeoutSeconds: Double = 5,
        intervalSeconds: Double = 2, deadlineSeconds: Double = 120, consecutiveSuccesses: Int = 1,
        rollbackOnFailure: Bool = true
    ) {
        self.service = service
        self.probe = probe
        self.host = host
        self.port = port
        self.attemptTimeoutSeconds = attemptTimeoutSeconds
        self.intervalSeconds = intervalSeconds
        self.deadlineSeconds = deadlineSeconds
        self.consecutiveSuccesses = consecutiveSuccesses
        self.rollbackOnFailure = rollbackOnFailure
    }
}

/// Stops the run until enough allowed people approve it.
public struct ApprovalSpec: Codable, Sendable, Equatable {
    /// Who may approve (operating-system user names unless the pipeline says otherwise).
    public var approvers: [String]
    /// How many distinct approvals are needed.
    public var required: Int
    /// Seconds after which a waiting run expires; `nil` waits for ever.
    public var timeoutSeconds: Double?
    /// Whether the person who started the run may approve it.
    public var allowSelfApproval: Bool
    /// What the approvers are told.
    public var message: String?
    /// The environment variable that names the person deciding (set by the team's sign-in wrapper); nil: the
    /// operating-system user.
    public var identityVariable: String?

    /// Creates an approval spec.
    public init(
        approvers: [String], required: Int = 1, timeoutSeconds: Double? = nil, allowSelfApproval: Bool = false,
        message: String? = nil, identityVariable: String? = nil
    ) {
        self.approvers = approvers
        self.required = required
        self.timeoutSeconds = timeoutSeconds
        self.allowSelfApproval = allowSelfApproval
        self.message = message
        self.identityVariable = identityVariable
    }

    /// Who is deciding, in `environment`: the identity variable's value, else the operating-system user.
    public func identity(environment: [String: String], operatingSystemUser: String) -> String? {
        guard let identityVariable else { return operatingSystemUser }
        return environment[identityVariable].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Runs a command through a shell, in the checkout.
public struct ShellSpec: Codable, Sendable, Equatable {
    /// The command line.
    public var command: String
    /// The shell that runs it (`/bin/sh -c COMMAND`).
    public var shell: String

    /// Creates a shell spec.
    public init(command: String, shell: String = "/bin/sh") {
        self.command = command
        self.shell = shell
    }
}

/// Posts a message to a webhook.
public struct NotifySpec: Codable, Sendable, Equatable {
    /// The webhook's URL, as a secret reference.
    public var webhook: SecretReference
    /// The payload's shape.
    public var format: NotificationFormat
    /// The message; `{env}`, `{sha}`, `{run}` and `{user}` are filled in.
    public var message: String

    /// Creates a notify spec.
    public init(webhook: SecretReference, format: NotificationFormat = .slack, message: String) {
        self.webhook = webhook
        self.format = format
        self.message = message
    }
}

/// The payload shape of a webhook.
public enum NotificationFormat: String, Codable, Sendable {
    /// A Slack-compatible incoming webhook (`{"text": ...}`).
    case slack
    /// A generic JSON event.
    case json
}

/// A run-level notification: posted on the named run events.
public struct NotificationSpec: Codable, Sendable, Equatable {
    /// The webhook's URL, as a secret reference.
    public var webhook: SecretReference
    /// The payload's shape.
    public var format: NotificationFormat
    /// The events that trigger a post.
    public var events: [RunEvent]

    /// Creates a notification spec.
    public init(webhook: SecretReference, format: NotificationFormat, events: [RunEvent]) {
        self.webhook = webhook
        self.format = format
        self.events = events
    }
}

/// The events of a run that notifications can follow.
public enum RunEvent: String, Codable, Sendable, CaseIterable {
    /// The run started.
    case started
    /// The run stopped at an approval gate.
    case waitingForApproval
    /// The run finished and every stage succeeded or was skipped by its condition.
    case succeeded
    /// A stage failed.
    case failed
    /// A service was put back on its previous task definition.
    case rolledBack
}
