extension HealthProbe {
    private enum CodingKeys: String, CodingKey {
        case type, method, service, http
    }

    /// Decodes `{"type": "http", "http": {...}}`, `{"type": "grpc", "method": ...}`,
    /// `{"type": "grpcHealth", "service": ...}` or `{"type": "tcp"}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "http": self = .http(try container.decode(HTTPProbe.self, forKey: .http))
        case "grpc": self = .grpc(method: try container.decode(String.self, forKey: .method))
        case "grpcHealth": self = .grpcHealth(service: try container.decode(String.self, forKey: .service))
        case "tcp": self = .tcp
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "unknown health probe type '\(other)'")
        }
    }

    /// Encodes the probe as a `type` plus that type's fields.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .http(let probe):
            try container.encode("http", forKey: .type)
            try container.encode(probe, forKey: .http)
        case .grpc(let method):
            try container.encode("grpc", forKey: .type)
            try container.encode(method, forKey: .method)
        case .grpcHealth(let service):
            try container.encode("grpcHealth", forKey: .type)
            try container.encode(service, forKey: .service)
        case .tcp:
            try container.encode("tcp", forKey: .type)
        }
    }
}
