extension Stage {
    private enum CodingKeys: String, CodingKey {
        case id, kind, service, dependsOn, timeoutSeconds, retry, condition, secrets, environment, spec
    }

    /// Decodes a stage; `spec`'s shape is chosen by `kind`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        service = try c.decodeIfPresent(String.self, forKey: .service)
        dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        retry = try c.decodeIfPresent(RetryPolicy.self, forKey: .retry)
        condition = try c.decodeIfPresent(Condition.self, forKey: .condition)
        secrets = try c.decodeIfPresent([SecretBinding].self, forKey: .secrets) ?? []
        environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
        let kind = try c.decode(StageKind.self, forKey: .kind)
        switch kind {
        case .checkout: spec = .checkout(try c.decode(CheckoutSpec.self, forKey: .spec))
        case .build: spec = .build(try c.decode(BuildImageSpec.self, forKey: .spec))
        case .push: spec = .push(try c.decode(PushImageSpec.self, forKey: .spec))
        case .registerTaskDefinition:
            spec = .registerTaskDefinition(try c.decode(RegisterTaskDefinitionSpec.self, forKey: .spec))
        case .updateService: spec = .updateService(try c.decode(UpdateServiceSpec.self, forKey: .spec))
        case .dnsRecord: spec = .dnsRecord(try c.decode(DNSRecordSpec.self, forKey: .spec))
        case .healthCheck: spec = .healthCheck(try c.decode(HealthCheckSpec.self, forKey: .spec))
        case .approval: spec = .approval(try c.decode(ApprovalSpec.self, forKey: .spec))
        case .shell: spec = .shell(try c.decode(ShellSpec.self, forKey: .spec))
        case .notify: spec = .notify(try c.decode(NotifySpec.self, forKey: .spec))
        case .rollback: spec = .rollback(try c.decode(RollbackSpec.self, forKey: .spec))
        }
    }

    /// Encodes the stage with its `kind` beside its `spec`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(service, forKey: .service)
        try c.encode(dependsOn, forKey: .dependsOn)
        try c.encodeIfPresent(timeoutSeconds, forKey: .timeoutSeconds)
        try c.encodeIfPresent(retry, forKey: .retry)
        try c.encodeIfPresent(condition, forKey: .condition)
        try c.encode(secrets, forKey: .secrets)
        try c.encode(environment, forKey: .environment)
        switch spec {
        case .checkout(let s): try c.encode(s, forKey: .spec)
        case .build(let s): try c.encode(s, forKey: .spec)
        case .push(let s): try c.encode(s, forKey: .spec)
        case .registerTaskDefinition(let s): try c.encode(s, forKey: .spec)
        case .updateService(let s): try c.encode(s, forKey: .spec)
        case .dnsRecord(let s): try c.encode(s, forKey: .spec)
        case .healthCheck(let s): try c.encode(s, forKey: .spec)
        case .approval(let s): try c.encode(s, forKey: .spec)
        case .shell(let s): try c.encode(s, forKey: .spec)
        case .notify(let s): try c.encode(s, forKey: .spec)
        case .rollback(let s): try c.encode(s, forKey: .spec)
        }
    }
}
