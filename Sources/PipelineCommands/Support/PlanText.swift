import PipelineDSL

/// A plan as a person reads it: run-level stages and one block per service, each in the order stages run.
struct PlanText {
    let plan: Plan

    init(_ plan: Plan) {
        self.plan = plan
    }

    func render() -> String {
        let env = plan.environment
        let ordered = Self.dependencyOrder(plan.stages)
        let gates = Set(plan.stages.filter { $0.kind == .approval }.map(\.id))
        var out = "\(env.name): branch \(env.branch) → cluster \(env.cluster) in \(env.region)"
        if let role = env.role { out += ", as \(role.arn)" }
        out += "\n\(plan.stages.count) stages, up to \(plan.parallelism) at once"
        if !gates.isEmpty { out += "; waits for approval at \(gates.sorted().joined(separator: ", "))" }
        out += "\n"

        let runLevel = ordered.filter { $0.service == nil }
        if !runLevel.isEmpty {
            out += "\nrun\n"
            for stage in runLevel { out += line(stage, group: nil, gates: gates) }
        }
        for service in plan.services {
            let chain = ordered.filter { $0.service == service.name }
            guard !chain.isEmpty else { continue }
            out += "\n\(service.name)  (\(service.protocol == .grpc ? "gRPC" : "HTTP") :\(service.port), ECR \(service.repository))\n"
            for stage in chain { out += line(stage, group: service.name, gates: gates) }
        }
        return out
    }

    private func line(_ stage: Stage, group: String?, gates: Set<String>) -> String {
        var out = ""
        let waits = stage.dependsOn.filter(gates.contains)
        for gate in waits { out += "  ── approval gate '\(gate)' ──\n" }
        let name = group.map { stage.id.hasPrefix("\($0).") ? String(stage.id.dropFirst($0.count + 1)) : stage.id } ?? stage.id
        var summary = Self.summary(stage)
        let word = summary.prefix { $0 != " " }
        if word == name { summary = summary.dropFirst(word.count).drop { $0 == " " }.description }
        var text = "  \(name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(summary)"
        var notes: [String] = []
        if let timeout = stage.timeoutSeconds { notes.append("timeout \(Self.duration(timeout))") }
        if let retry = stage.retry, retry.attempts > 0 {
            notes.append("\(retry.attempts) retries, backoff \(Self.duration(retry.backoffSeconds))")
        }
        if let condition = stage.condition { notes.append("only when \(condition)") }
        if !stage.secrets.isEmpty { notes.append("secrets \(stage.secrets.map(\.name).joined(separator: ", "))") }
        let outside = stage.dependsOn.filter { dependency in
            !gates.contains(dependency) && !(group.map { dependency.hasPrefix("\($0).") } ?? false)
        }
        if !outside.isEmpty && (group != nil || outside.count <= 3) {
            notes.append("after \(outside.joined(separator: ", "))")
        } else if !outside.isEmpty {
            notes.append("after \(outside.count) stages")
        }
        if !notes.isEmpty { text += "  [\(notes.joined(separator: "; "))]" }
        return out + text + "\n"
    }

    static func summary(_ stage: Stage) -> String {
        switch stage.spec {
        case .checkout(let spec):
            return "checkout    the commit into the run's workspace\(spec.submodules ? ", with submodules" : "")"
        case .build(let spec):
            let dockerfile = spec.build.context + "/" + spec.build.dockerfile
            var extras: [String] = []
            if !spec.build.arguments.isEmpty {
                extras.append("arguments " + spec.build.arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            if let target = spec.build.target { extras.append("target \(target)") }
            if let builder = spec.build.builder { extras.append("with \(builder)") }
            if let cache = spec.cacheRepository { extras.append("layer cache in \(cache)") }
            if spec.alwaysBuild { extras.append("built every run") }
            return "build       \(dockerfile) → image tagged \(spec.tag)" + (extras.isEmpty ? "" : " (\(extras.joined(separator: "; ")))")
        case .push(let spec):
            return "push        to ECR \(spec.repository) as \(spec.tags.joined(separator: ", "))"
        case .registerTaskDefinition(let spec):
            return "register    task definition from \(spec.template)"
        case .updateService(let spec):
            let wait = spec.waitForStable
                ? ", wait until stable (≤ \(duration(spec.waitTimeoutSeconds)), no progress ≤ \(duration(spec.noProgressTimeoutSeconds)))"
                : ""
            return "deploy      ECS service \(spec.ecsService) in \(spec.cluster)\(wait)"
        case .dnsRecord(let spec):
            let target = spec.record.alias.map { "alias \($0.dnsName)" } ?? spec.record.values.joined(separator: ", ")
            return "dns         UPSERT \(spec.record.type) \(spec.name) → \(target) in zone \(spec.zone)"
        case .healthCheck(let spec):
            return "health      \(describe(spec.probe)) at \(spec.host):\(spec.port), deadline \(duration(spec.deadlineSeconds))"
                + (spec.rollbackOnFailure ? ", rolls back on failure" : "")
        case .approval(let spec):
            var text = "approval    \(spec.required) of \(spec.approvers.joined(separator: ", ")) must approve"
            if let timeout = spec.timeoutSeconds { text += ", expires after \(duration(timeout))" }
            return text
        case .shell(let spec):
            return "shell       \(spec.command)"
        case .notify(let spec):
            return "notify      \(spec.format.rawValue) webhook from \(spec.webhook.store.rawValue) \(spec.webhook.name)"
        case .rollback(let spec):
            return "rollback    ECS service \(spec.update.ecsService) in \(spec.update.cluster) back to \(spec.taskDefinitionArn)"
        }
    }

    static func describe(_ probe: HealthProbe) -> String {
        switch probe {
        case .http(let http): "HTTP \(http.method) \(http.path) expecting \(http.expectStatusMin)-\(http.expectStatusMax)"
        case .grpc(let method): "gRPC \(method)"
        case .grpcHealth(let service): "gRPC health check\(service.isEmpty ? "" : " of \(service)")"
        case .tcp: "TCP connect"
        }
    }

    static func duration(_ seconds: Double) -> String {
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        if seconds == seconds.rounded() { return "\(Int(seconds))s" }
        return "\(seconds)s"
    }

    /// The stages in an order where each comes after what it depends on; ties keep declaration order.
    static func dependencyOrder(_ stages: [Stage]) -> [Stage] {
        var done: Set<String> = []
        var remaining = stages
        var ordered: [Stage] = []
        while !remaining.isEmpty {
            guard let next = remaining.firstIndex(where: { $0.dependsOn.allSatisfy(done.contains) }) else {
                return ordered + remaining  // a cycle; validation has reported it
            }
            let stage = remaining.remove(at: next)
            done.insert(stage.id)
            ordered.append(stage)
        }
        return ordered
    }
}
