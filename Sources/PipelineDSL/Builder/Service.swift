/// A service a pipeline deploys, declared in a `Pipeline { }`.
///
/// By default its image is built from `services/NAME/Dockerfile`, its task definition comes from
/// `pipelines/taskdefs/NAME.json`, its DNS name is `NAME.DOMAIN`, and its health check is `GET /health`
/// for HTTP and the standard gRPC health service for gRPC.
public struct Service: Sendable {
    /// The plan data this declaration makes.
    public private(set) var spec: ServiceSpec

    /// Declares a service: its name, its ECR repository, its container port and its protocol.
    public init(_ name: String, repository: String, port: Int, protocol: ServiceProtocol) {
        let probe: HealthProbe = `protocol` == .grpc ? .grpcHealth(service: "") : .http(HTTPProbe(path: "/health"))
        spec = ServiceSpec(
            name: name, repository: repository, port: port, protocol: `protocol`, hostname: name,
            build: BuildSpec(context: "services/\(name)"), taskDefinition: "taskdefs/\(name).json", healthCheck: probe)
    }

    /// Where and how its image is built: the context folder (relative to the repository root), the
    /// Dockerfile (relative to the context), build arguments and the target stage.
    public func build(
        context: String, dockerfile: String = "Dockerfile", arguments: [String: String] = [:], target: String? = nil,
        builder: String? = nil
    ) -> Service {
        with {
            $0.build = BuildSpec(
                context: context, dockerfile: dockerfile, arguments: arguments, target: target, builder: builder)
        }
    }

    /// The task-definition template, relative to the pipelines folder.
    public func taskDefinition(_ path: String) -> Service {
        with { $0.taskDefinition = path }
    }

    /// The host name of the service's DNS record, under the environment's domain.
    public func hostname(_ name: String) -> Service {
        with { $0.hostname = name }
    }

    /// How to tell that a deployed copy is healthy.
    public func healthCheck(_ probe: HealthProbe) -> Service {
        with { $0.healthCheck = probe }
    }

    private func with(_ change: (inout ServiceSpec) -> Void) -> Service {
        var copy = self
        change(&copy.spec)
        return copy
    }
}

extension HealthProbe {
    /// An HTTP request (`GET` by default) of `path` that must answer with a status in `expect`, and, when set, a
    /// body containing `bodyContains` and a JSON body whose `jsonField` (`status`, `checks.db`) equals `equals`.
    public static func http(
        _ path: String, method: String = "GET", expect: ClosedRange<Int> = 200...299, bodyContains: String? = nil,
        jsonField: String? = nil, equals: String? = nil, headers: [String: String] = [:], tls: Bool = false
    ) -> HealthProbe {
        .http(
            HTTPProbe(
                method: method, path: path, headers: headers, expectStatus: expect, bodyContains: bodyContains,
                jsonField: jsonField, jsonEquals: equals, tls: tls))
    }

    /// A unary gRPC call to `method` (`/user.UserService/Check`) with an empty request; healthy when `grpc-status`
    /// is 0.
    public static func grpc(_ method: String) -> HealthProbe {
        .grpc(method: method)
    }

    /// The standard `grpc.health.v1.Health/Check` for `service` ("" for the server as a whole); healthy when it
    /// answers SERVING.
    public static func grpcHealth(_ service: String = "") -> HealthProbe {
        .grpcHealth(service: service)
    }

    /// A TCP connection to the port.
    public static var tcpConnect: HealthProbe { .tcp }
}

extension Duration {
    /// A number of minutes.
    public static func minutes(_ minutes: Int) -> Duration { .seconds(minutes * 60) }
    /// A number of hours.
    public static func hours(_ hours: Int) -> Duration { .seconds(hours * 3600) }

    /// The duration in seconds, as plan data carries it.
    var inSeconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
