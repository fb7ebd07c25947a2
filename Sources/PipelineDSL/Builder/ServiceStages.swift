/// Builds the chain's service image from its build context, tagged with the commit SHA.
public struct BuildImage: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "build" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }

    /// Whether to build even an unchanged service (see `BuildImageSpec.alwaysBuild`).
    public var alwaysBuild: Bool
    /// The registry repository of the builder's layer cache (see `BuildImageSpec.cacheRepository`).
    public var cacheRepository: String?

    /// Builds the service's image as the service declares it, unless the registry already has the image of its
    /// build key (`alwaysBuild: true` builds every time, as `pipeline run --rebuild` does for one run).
    /// `cacheRepository` (`"{repository}-cache"`, `"build-cache"`) names a repository of the service's registry
    /// where buildah and podman keep the layers of each step, so that any host or run reuses them; the
    /// repository must exist (pipeline creates none). Without it, builds reuse the host's own layer cache.
    public init(alwaysBuild: Bool = false, cacheRepository: String? = nil) {
        self.alwaysBuild = alwaysBuild
        self.cacheRepository = cacheRepository
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let service = context.service else { return nil }
        let cache = cacheRepository.map { context.expand($0, field: "cacheRepository") }
        // Build arguments take the plan-time placeholders and, filled when the stage runs, {sha} and {shortSha}
        // (then every commit is a new build). {run} and {user} would make two runs of one commit build two
        // images under one immutable SHA tag.
        var build = service.build
        for (what, path) in [("build context", build.context), ("Dockerfile", build.context + "/" + build.dockerfile)] where BuildImage.leavesRepository(path) {
            context.report("the \(what) '\(path)' leaves the repository; name a path inside it (relative to the repository root)")
        }
        for (name, value) in build.arguments {
            let filled = context.expand(value, field: "build argument \(name)")
            for placeholder in ["{run}", "{user}"] where filled.contains(placeholder) {
                context.report(
                    "build argument \(name) uses \(placeholder), which differs from run to run; an image is built once per build key and tagged with its commit, so use {sha} or a plan-time placeholder")
            }
            build.arguments[name] = filled
        }
        if let cache, !BuildImage.isRepositoryName(cache) {
            context.report(
                "cacheRepository '\(cache)' is not a repository name (lower-case letters and digits, separated by '.', '_', '-' or '/'; plan-time placeholders such as {repository} and {service} only)")
        }
        return .build(BuildImageSpec(service: service.name, build: build, alwaysBuild: alwaysBuild, cacheRepository: cache))
    }

    /// Whether the repository-relative `path` is absolute or climbs above the repository root.
    static func leavesRepository(_ path: String) -> Bool {
        if path.hasPrefix("/") { return true }
        var depth = 0
        for component in path.split(separator: "/") {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 { return true }
        }
        return false
    }

    /// Whether `name` is a registry repository name as ECR and the OCI distribution spec allow:
    /// `[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*`, at most 256 characters.
    static func isRepositoryName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 256 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { component in
            guard let first = component.first, let last = component.last, isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
            var previousSeparator = false
            for character in component {
                if isLowerAlphanumeric(character) {
                    previousSeparator = false
                } else if ".-_".contains(character), !previousSeparator {
                    previousSeparator = true
                } else {
                    return false
                }
            }
            return true
        }
    }

    private static func isLowerAlphanumeric(_ character: Character) -> Bool {
        character.isASCII && (character.isLowercase || character.isNumber)
    }
}

/// Pushes the image built earlier in the chain to the service's ECR repository.
public struct PushImage: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "push" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }
    private let tags: [String]
    private let movingTags: [String]
    private let force: Bool

    /// Pushes the image with the full commit SHA as its tag, plus `extraTags` (`{shortSha}`, ...), which are
    /// immutable: an existing one on another digest is refused unless `force` is set. `movingTags` follow the
    /// newest image (`["{env}"]` tags it `sv-user:staging`) and are moved without asking.
    public init(extraTags: [String] = [], movingTags: [String] = [], force: Bool = false) {
        self.tags = ["{sha}"] + extraTags
        self.movingTags = movingTags
        self.force = force
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let service = context.service else { return nil }
        return .push(
            PushImageSpec(
                service: service.name, repository: service.repository, buildStage: context.earlier[.build],
                tags: tags.map { context.expand($0, field: "tag") },
                movingTags: movingTags.isEmpty ? nil : movingTags.map { context.expand($0, field: "tag") }, force: force))
    }
}

/// Registers the service's task definition, rendered from its template for the environment.
public struct RegisterTaskDefinition: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "register" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }

    private let verifyImage: Bool

    /// Registers the template the service declares, with the image pushed earlier in the chain (else the
    /// repository's image tagged with the commit SHA). With `verifyImage`, refuses when the registry does not have
    /// that image: a task definition naming a missing image would only fail later, when ECS starts tasks.
    public init(verifyImage: Bool = true) {
        self.verifyImage = verifyImage
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let service = context.service else { return nil }
        return .registerTaskDefinition(
            RegisterTaskDefinitionSpec(
                service: service.name, template: service.taskDefinition, repository: service.repository,
                pushStage: context.earlier[.push], verifyImage: verifyImage ? nil : false))
    }
}

/// Points the ECS service at the task definition registered earlier in the chain, and waits until it is stable.
public struct UpdateService: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "deploy" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }
    private let waitForStable: Bool
    private let waitTimeout: Duration
    private let noProgressTimeout: Duration
    private let pollInterval: Duration

    /// Updates the service; with `waitForStable`, waits until this task definition's deployment is the only one,
    /// runs the desired count and has completed, failing after `waitTimeout` in all or `noProgressTimeout`
    /// without change.
    public init(
        waitForStable: Bool = true, waitTimeout: Duration = .minutes(15), noProgressTimeout: Duration = .minutes(5),
        pollInterval: Duration = .seconds(2)
    ) {
        self.waitForStable = waitForStable
        self.waitTimeout = waitTimeout
        self.noProgressTimeout = noProgressTimeout
        self.pollInterval = pollInterval
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let service = context.service else { return nil }
        return .updateService(
            UpdateServiceSpec(
                service: service.name, cluster: context.environment.cluster,
                ecsService: context.environment.ecsServiceName(for: service.name),
                registerStage: context.earlier[.registerTaskDefinition], waitForStable: waitForStable,
                waitTimeoutSeconds: waitTimeout.inSeconds, noProgressTimeoutSeconds: noProgressTimeout.inSeconds,
                pollIntervalSeconds: pollInterval.inSeconds))
    }
}

/// UPSERTs the service's Route 53 record (`HOSTNAME.DOMAIN` by default) and waits until it is in sync.
public struct DNSRecord: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "dns" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }
    private let record: DNSRecordValue
    private let name: String
    private let zone: String?
    private let waitForSync: Bool

    /// Sets the record `name` (placeholders allowed) in `zone` (the environment's by default) to `record`.
    public init(_ record: DNSRecordValue, name: String = "{hostname}.{domain}", zone: String? = nil, waitForSync: Bool = true) {
        self.record = record
        self.name = name
        self.zone = zone
        self.waitForSync = waitForSync
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let zone = zone ?? context.environment.dns?.zone else {
            context.report(
                "a DNS record needs a hosted zone: add .dns(zone:) to environment '\(context.environment.name)' or pass zone:")
            return nil
        }
        var value = record
        value.values = value.values.map { context.expand($0, field: "record value") }
        if var alias = value.alias {
            alias.dnsName = context.expand(alias.dnsName, field: "alias target")
            alias.hostedZoneId = context.expand(alias.hostedZoneId, field: "alias hosted zone")
            value.alias = alias
        }
        return .dnsRecord(
            DNSRecordSpec(
                service: context.service?.name, zone: context.expand(zone, field: "zone"),
                name: context.expand(name, field: "record name"), record: value, waitForSync: waitForSync))
    }
}

/// Asks the deployed service whether it is healthy, with the probe the service declares.
public struct HealthCheck: StageComponent {
    /// See ``StageComponent/options``.
    public var options = StageOptions()
    /// See ``StageComponent/defaultName``.
    public var defaultName: String { "health" }
    /// See ``StageComponent/needsService``.
    public var needsService: Bool { true }
    private let host: String
    private let port: String
    private let interval: Duration
    private let deadline: Duration
    private let attemptTimeout: Duration
    private let consecutiveSuccesses: Int
    private let rollbackOnFailure: Bool

    /// Probes `host:port` (the service's DNS name and port by default) every `interval` until
    /// `consecutiveSuccesses` probes in a row succeed, failing at `deadline`; a failure puts the service back
    /// on its previous task definition when `rollbackOnFailure`.
    public init(
        host: String = "{hostname}.{domain}", port: String = "{port}", interval: Duration = .seconds(2),
        deadline: Duration = .minutes(2), attemptTimeout: Duration = .seconds(5), consecutiveSuccesses: Int = 1,
        rollbackOnFailure: Bool = true
    ) {
        self.host = host
        self.port = port
        self.interval = interval
        self.deadline = deadline
        self.attemptTimeout = attemptTimeout
        self.consecutiveSuccesses = consecutiveSuccesses
        self.rollbackOnFailure = rollbackOnFailure
    }

    /// See ``StageComponent/makeSpec(in:)``.
    public func makeSpec(in context: StageContext) -> StageSpec? {
        guard let service = context.service else { return nil }
        let portText = context.expand(port, field: "port")
        guard let portNumber = Int(portText) else {
            context.report("port '\(portText)' is not a number")
            return nil
        }
        return .healthCheck(
            HealthCheckSpec(
                service: service.name, probe: service.healthCheck, host: context.expand(host, field: "host"),
                port: portNumber, attemptTimeoutSeconds: attemptTimeout.inSeconds,
                intervalSeconds: interval.inSeconds, deadlineSeconds: deadline.inSeconds,
                consecutiveSuccesses: consecutiveSuccesses, rollbackOnFailure: rollbackOnFailure))
    }
}
