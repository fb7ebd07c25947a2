/// The document a compiled pipeline program writes to the path the runner names.
///
/// `errors` lists every problem the DSL found while building; `plan` is present when there were none.
public struct ManifestDocument: Codable, Sendable, Equatable {
    /// The version of this document's schema; see ``Manifest/schemaVersion``.
    public var version: Int
    /// Problems found while building the pipeline, all at once.
    public var errors: [String]
    /// The pipeline, with one stage list per environment; absent when `errors` is not empty.
    public var plan: Manifest?

    /// Creates a document.
    public init(version: Int = Manifest.schemaVersion, errors: [String], plan: Manifest?) {
        self.version = version
        self.errors = errors
        self.plan = plan
    }
}

/// A whole pipeline as its program describes it: the environments, the services, and the stages each
/// environment runs.
public struct Manifest: Codable, Sendable, Equatable {
    /// The schema version written by this build of the DSL. Readers refuse documents of a newer version.
    public static let schemaVersion = 1

    /// The pipeline's name.
    public var name: String
    /// Where the code to deploy comes from.
    public var source: Source
    /// How many stages may run at once in one run.
    public var parallelism: Int
    /// Every environment the pipeline deploys to, in the order they were declared.
    public var environments: [EnvironmentSpec]
    /// Every service the pipeline deploys, in the order they were declared.
    public var services: [ServiceSpec]
    /// The run-level notifications, sent on run events whatever the stages are.
    public var notifications: [NotificationSpec]
    /// The stages of each environment, keyed by environment name, dependencies already resolved.
    public var stages: [String: [Stage]]
    /// Where the repository is hosted (GitHub, GitLab, Gitea): webhooks in, statuses out. Absent in older
    /// documents, read as none.
    public var forges: [ForgeSpec]

    /// Creates a manifest.
    public init(
        name: String, source: Source, parallelism: Int, environments: [EnvironmentSpec],
        services: [ServiceSpec], notifications: [NotificationSpec], stages: [String: [Stage]], forges: [ForgeSpec] = []
    ) {
        self.forges = forges
        self.name = name
        self.source = source
        self.parallelism = parallelism
        self.environments = environments
        self.services = services
        self.notifications = notifications
        self.stages = stages
    }

    /// The plan for one environment, or `nil` when the pipeline has no environment of that name.
    public func plan(for environment: String) -> Plan? {
        guard let env = environments.first(where: { $0.name == environment }) else { return nil }
        return Plan(
            pipeline: name, source: source, parallelism: parallelism, environment: env, services: services,
            notifications: notifications, stages: stages[environment] ?? [])
    }
}

extension Manifest {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        source = try container.decode(Source.self, forKey: .source)
        parallelism = try container.decode(Int.self, forKey: .parallelism)
        environments = try container.decode([EnvironmentSpec].self, forKey: .environments)
        services = try container.decode([ServiceSpec].self, forKey: .services)
        notifications = try container.decode([NotificationSpec].self, forKey: .notifications)
        stages = try container.decode([String: [Stage]].self, forKey: .stages)
        forges = try container.decodeIfPresent([ForgeSpec].self, forKey: .forges) ?? []
    }

    /// Where the repository is hosted on `kind`, if the pipeline says.
    public func forge(_ kind: ForgeSpec.Kind) -> ForgeSpec? { forges.first { $0.kind == kind } }
}

/// Where the pipeline's repository is hosted, and the secrets its webhooks and API take.
public struct ForgeSpec: Codable, Sendable, Equatable {
    /// The kinds of host.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case github, gitlab, gitea
    }

    /// The host.
    public var kind: Kind
    /// `OWNER/NAME` (GitLab: the project's path with its namespace).
    public var repository: String
    /// What webhook deliveries are signed with (GitLab: the token they carry).
    public var webhookSecret: SecretReference?
    /// The API token statuses are reported with (GitHub).
    public var token: SecretReference?
    /// The REST API's base URL (GitHub).
    public var api: String?

    /// Creates a forge.
    public init(kind: Kind, repository: String, webhookSecret: SecretReference?, token: SecretReference?, api: String?) {
        self.kind = kind
        self.repository = repository
        self.webhookSecret = webhookSecret
        self.token = token
        self.api = api
    }

    /// What is wrong with `forges`, each problem saying what to write instead.
    static func problems(_ forges: [ForgeSpec]) -> [String] {
        var problems: [String] = []
        for kind in Kind.allCases where forges.filter({ $0.kind == kind }).count > 1 {
            problems.append("the pipeline names its repository on \(kind.rawValue) more than once: keep one")
        }
        for forge in forges {
            let parts = forge.repository.split(separator: "/", omittingEmptySubsequences: false)
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
            if parts.count < 2 || (forge.kind != .gitlab && parts.count != 2)
                || parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." || !$0.allSatisfy(allowed.contains) })
            {
                problems.append(
                    "\(forge.kind.rawValue) repository '\(forge.repository)' is not OWNER/NAME\(forge.kind == .gitlab ? " (or GROUP/SUBGROUP/NAME)" : ""): write it as on its web page, e.g. \"acme/platform\"")
            }
            if let api = forge.api {
                let lowered = api.lowercased()
                if !(lowered.hasPrefix("https://") || lowered.hasPrefix("http://")) || api.contains(where: \.isWhitespace) {
                    problems.append("\(forge.kind.rawValue) api '\(api)' is not an http(s) URL: use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server")
                }
            }
        }
        return problems
    }
}

/// What one run of one environment executes: the contract between loading a pipeline and every other command.
///
/// `pipeline plan ENV --json` prints it; docs/plan-schema.md documents it field by field.
public struct Plan: Codable, Sendable, Equatable {
    /// The schema version of this plan.
    public var version: Int
    /// The pipeline's name.
    public var pipeline: String
    /// Where the code to deploy comes from.
    public var source: Source
    /// How many stages may run at once.
    public var parallelism: Int
    /// The environment this plan deploys to.
    public var environment: EnvironmentSpec
    /// Every service of the pipeline.
    public var services: [ServiceSpec]
    /// The run-level notifications.
    public var notifications: [NotificationSpec]
    /// The stages, in declaration order; `dependsOn` gives the order they run in.
    public var stages: [Stage]

    /// Creates a plan.
    public init(
        version: Int = Manifest.schemaVersion, pipeline: String, source: Source, parallelism: Int,
        environment: EnvironmentSpec, services: [ServiceSpec], notifications: [NotificationSpec], stages: [Stage]
    ) {
        self.version = version
        self.pipeline = pipeline
        self.source = source
        self.parallelism = parallelism
        self.environment = environment
        self.services = services
        self.notifications = notifications
        self.stages = stages
    }

    /// The service of that name, if the pipeline declares it.
    public func service(named name: String) -> ServiceSpec? {
        services.first { $0.name == name }
    }
}

/// Where the code to deploy comes from.
public struct Source: Codable, Sendable, Equatable {
    /// A path or URL of the git repository; `nil` means the repository that holds `pipelines/`.
    public var repository: String?
    /// Where the HTTPS token for the repository lives, when not in `PIPELINE_GIT_TOKEN`.
    public var token: SecretReference?

    /// Creates a source.
    public init(repository: String? = nil, token: SecretReference? = nil) {
        self.repository = repository
        self.token = token
    }
}
