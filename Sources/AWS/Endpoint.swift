/// Where the API of one AWS service is reached, resolved as the AWS CLI resolves it.
public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
    /// The base URL (`https://ecs.us-east-1.amazonaws.com`).
    public let url: String
    /// Where it came from, for `pipeline aws whoami`.
    public let origin: Origin

    /// An endpoint at `url`, found through `origin`.
    public init(url: String, origin: Origin) {
        self.url = url
        self.origin = origin
    }
    /// The places an endpoint can come from, strongest first.
    public enum Origin: String, Sendable {
        /// `AWS_ENDPOINT_URL_<SERVICE>`.
        case serviceVariable
        /// `AWS_ENDPOINT_URL`.
        case globalVariable
        /// AWS's own endpoint for the service and region.
        case standard
    }

    /// `url (origin)`.
    public var description: String { "\(url) (\(origin.rawValue))" }

    /// The endpoint of `service` in `region`, honouring `AWS_ENDPOINT_URL_<SERVICE>` and then `AWS_ENDPOINT_URL`.
    public static func resolve(_ service: AWSService, region: String, environment: [String: String]) -> Endpoint {
        if let url = environment["AWS_ENDPOINT_URL_\(service.endpointVariableSuffix)"], !url.isEmpty {
            return Endpoint(url: url, origin: .serviceVariable)
        }
        if let url = environment["AWS_ENDPOINT_URL"], !url.isEmpty {
            return Endpoint(url: url, origin: .globalVariable)
        }
        return Endpoint(url: service.standardURL(region: region), origin: .standard)
    }
}

/// The AWS services the pipeline calls.
public enum AWSService: String, CaseIterable, Sendable {
    /// Elastic Container Service.
    case ecs
    /// Elastic Container Registry's API (not the registry itself).
    case ecr
    /// Route 53.
    case route53
    /// Security Token Service.
    case sts
    /// Secrets Manager.
    case secretsManager
    /// Elastic Load Balancing v2.
    case elasticLoadBalancingV2

    /// The SigV4 signing name.
    public var signingName: String {
        switch self {
        case .ecs: "ecs"
        case .ecr: "ecr"
        case .route53: "route53"
        case .sts: "sts"
        case .secretsManager: "secretsmanager"
        case .elasticLoadBalancingV2: "elasticloadbalancing"
        }
    }

    /// The suffix of its `AWS_ENDPOINT_URL_*` variable: the service id in upper case, spaces as underscores.
    public var endpointVariableSuffix: String {
        switch self {
        case .ecs: "ECS"
        case .ecr: "ECR"
        case .route53: "ROUTE_53"
        case .sts: "STS"
        case .secretsManager: "SECRETS_MANAGER"
        case .elasticLoadBalancingV2: "ELASTIC_LOAD_BALANCING_V2"
        }
    }

    /// AWS's own endpoint in `region`; Route 53 is global.
    public func standardURL(region: String) -> String {
        switch self {
        case .route53: "https://route53.amazonaws.com"
        default: "https://\(signingName).\(region).amazonaws.com"
        }
    }
}
