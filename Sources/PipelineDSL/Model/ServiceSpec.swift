/// One deployable service, as plan data.
public struct ServiceSpec: Codable, Sendable, Equatable {
    /// The service's name in the pipeline (`user-service`).
    public var name: String
    /// The ECR repository its image is pushed to (`sv-user`).
    public var repository: String
    /// The port the container listens on.
    public var port: Int
    /// What the service speaks on that port.
    public var `protocol`: ServiceProtocol
    /// The host name of its DNS record, under the environment's domain.
    public var hostname: String
    /// How its image is built.
    public var build: BuildSpec
    /// The task-definition template, relative to the pipelines folder.
    public var taskDefinition: String
    /// How to tell that a deployed copy is healthy.
    public var healthCheck: HealthProbe

    /// Creates a service spec.
    public init(
        name: String, repository: String, port: Int, protocol: ServiceProtocol, hostname: String,
        build: BuildSpec, taskDefinition: String, healthCheck: HealthProbe
    ) {
        self.name = name
        self.repository = repository
        self.port = port
        self.protocol = `protocol`
        self.hostname = hostname
        self.build = build
        self.taskDefinition = taskDefinition
        self.healthCheck = healthCheck
    }
}

/// The protocol a service speaks.
public enum ServiceProtocol: String, Codable, Sendable, Equatable {
    /// HTTP/1.1 or HTTP/2 over plain TCP or TLS.
    case http
    /// gRPC over HTTP/2.
    case grpc
}

/// How a service's image is built.
public struct BuildSpec: Codable, Sendable, Equatable {
    /// The build context, relative to the repository root.
    public var context: String
    /// The Dockerfile, relative to the build context.
    public var dockerfile: String
    /// Build arguments (`--build-arg`).
    public var arguments: [String: String]
    /// The Dockerfile stage to build, when not the last one.
    public var target: String?
    /// The builder to use (`docker`, `podman`, `buildah`); `nil` picks the first one found.
    public var builder: String?

    /// Creates a build spec.
    public init(
        context: String, dockerfile: String = "Dockerfile", arguments: [String: String] = [:],
        target: String? = nil, builder: String? = nil
    ) {
        self.context = context
        self.dockerfile = dockerfile
        self.arguments = arguments
        self.target = target
        self.builder = builder
    }
}

/// One way of asking a service whether it is healthy.
public enum HealthProbe: Codable, Sendable, Equatable {
    /// An HTTP request that must answer with a status in `expectStatus` (and contain `bodyContains`, if set).
    case http(HTTPProbe)
    /// A unary gRPC call to `method` with an empty request; healthy when `grpc-status` is 0.
    case grpc(method: String)
    /// The standard `grpc.health.v1.Health/Check`; healthy when the status is SERVING.
    case grpcHealth(service: String)
    /// A TCP connection that opens.
    case tcp
}

/// An HTTP health probe.
public struct HTTPProbe: Codable, Sendable, Equatable {
    /// The request method.
    public var method: String
    /// The path, starting with `/`.
    public var path: String
    /// Extra request headers.
    public var headers: [String: String]
    /// The lowest status that counts as healthy.
    public var expectStatusMin: Int
    /// The highest status that counts as healthy.
    public var expectStatusMax: Int
    /// A substring the body must contain, if set.
    public var bodyContains: String?
    /// A field of the JSON body (dots for nesting: `status`, `checks.db`) that must equal `jsonEquals`.
    public var jsonField: String?
    /// The text the JSON field must equal (numbers and booleans as written in JSON).
    public var jsonEquals: String?
    /// Use TLS.
    public var tls: Bool

    /// Creates an HTTP probe.
    public init(
        method: String = "GET", path: String, headers: [String: String] = [:], expectStatus: ClosedRange<Int> = 200...299,
        bodyContains: String? = nil, jsonField: String? = nil, jsonEquals: String? = nil, tls: Bool = false
    ) {
        self.method = method
        self.path = path
        self.headers = headers
        self.expectStatusMin = expectStatus.lowerBound
        self.expectStatusMax = expectStatus.upperBound
        self.bodyContains = bodyContains
        self.jsonField = jsonField
        self.jsonEquals = jsonEquals
        self.tls = tls
    }
}
