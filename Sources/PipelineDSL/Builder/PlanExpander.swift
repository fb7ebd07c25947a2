/// Turns a pipeline's declarations into one stage list per environment.
struct PlanExpander {
    let name: String
    let source: Source
    let parallelism: Int
    let items: [PipelineItem]
    private let problems = Problems()

    init(name: String, source: Source, parallelism: Int, items: [PipelineItem]) {
        self.name = name
        self.source = source
        self.parallelism = parallelism
        self.items = items
    }

    func document() -> ManifestDocument {
        var environments: [EnvironmentSpec] = []
        var services: [ServiceSpec] = []
        var steps: [Step] = []
        var notifications: [NotificationSpec] = []
        var forges: [ForgeSpec] = []
        for item in items {
            switch item.content {
            case .environment(let env): environments.append(env)
            case .service(let service): services.append(service)
            case .step(let step): steps.append(step)
            case .notification(let notification): notifications.append(notification)
            case .forge(let forge): forges.append(forge)
            }
        }
        if name.isEmpty { problems.add("the pipeline needs a name: Pipeline(\"NAME\") { ... }") }
        if environments.isEmpty {
            problems.add("the pipeline declares no environment: add Environment(\"staging\", branch: ..., region: ..., cluster: ...)")
        }
        reportDuplicates(environments.map(\.name), what: "environment")
        for env in environments {
            guard let source = env.verifiedIn else { continue }
            if source == env.name {
                problems.add("environment '\(env.name)' requires what it deploys to be verified in itself: name another environment in requiresVerified(in:)")
            } else if !environments.contains(where: { $0.name == source }) {
                problems.add("environment '\(env.name)' requires verification in '\(source)', which the pipeline does not declare (it has \(environments.map(\.name).joined(separator: ", ")))")
            }
        }
        reportDuplicates(services.map(\.name), what: "service")
        reportServiceStagesOutsideEachService(steps)
        for problem in ForgeSpec.problems(forges) { problems.add(problem) }

        var stages: [String: [Stage]] = [:]
        for env in environments {
            stages[env.name] = expand(steps, in: env, services: services)
        }
        if !problems.all.isEmpty { return ManifestDocument(errors: problems.all, plan: nil) }
        let manifest = Manifest(
            name: name, source: source, parallelism: parallelism, environments: environments, services: services,
            notifications: notifications, stages: stages, forges: forges)
        return ManifestDocument(errors: [], plan: manifest)
    }

    /// Where a step's successors start from: every last stage, and per service the last stage of its chain.
    private struct Tails {
        var all: [String] = []
        var perService: [String: [String]] = [:]

        func of(_ service: String) -> [String] { perService[service] ?? all }
    }

    private func expand(_ steps: [Step], in env: EnvironmentSpec, services: [ServiceSpec]) -> [Stage] {
        var stages: [Stage] = []
        var tails = Tails()
        // Per service, the stage of each kind so far, across EachService blocks: a register after an approval
        // gate still takes the image its service's push stage (in the block before the gate) pushed.
        var earlierByService: [String: [StageKind: String]] = [:]
        for step in steps {
            switch step {
            case .stage(let component):
                if let stage = make(component, env: env, service: nil, after: tails.all, earlier: [:]) {
                    stages.append(stage)
                    tails = Tails(all: [stage.id])
                }
            case .parallel(let components):
                let made = components.compactMap { make($0, env: env, service: nil, after: tails.all, earlier: [:]) }
                stages += made
                if !made.isEmpty { tails = Tails(all: made.map(\.id)) }
            case .eachService(let block):
                let chosen = chosenServices(block, from: services)
                var ends: [String] = []
                for service in chosen {
                    var previous = tails.of(service.name)
                    var earlier = earlierByService[service.name] ?? [:]
                    for component in block.body(service) {
                        guard let stage = make(component, env: env, service: service, after: previous, earlier: earlier)
                        else { continue }
                        stages.append(stage)
                        earlier[stage.kind] = stage.id
                        previous = [stage.id]
                    }
                    earlierByService[service.name] = earlier
                    tails.perService[service.name] = previous
                    ends += previous
                }
                tails.all = unique(ends)
            }
        }
        return stages
    }

    private func chosenServices(_ block: EachService, from services: [ServiceSpec]) -> [ServiceSpec] {
        guard let only = block.only else { return services }
        for name in only where !services.contains(where: { $0.name == name }) {
            problems.add(
                "EachService(only:) names unknown service '\(name)'; declared: \(services.map(\.name).joined(separator: ", "))")
        }
        return services.filter { only.contains($0.name) }
    }

    private func make(
        _ component: any StageComponent, env: EnvironmentSpec, service: ServiceSpec?, after: [String],
        earlier: [StageKind: String]
    ) -> Stage? {
        let base = component.options.name ?? component.defaultName
        let id = service.map { "\($0.name).\(base)" } ?? base
        if component.needsService && service == nil { return nil }
        var runtimeCondition: Condition?
        if let condition = component.options.condition {
            switch condition.settled(environment: env.name) {
            case .constant(false): return nil
            case .constant(true): break
            case .runtime(let rest): runtimeCondition = rest
            }
        }
        let context = StageContext(environment: env, service: service, earlier: earlier, stageID: id, problems: problems)
        guard let spec = component.makeSpec(in: context) else { return nil }
        let explicit = component.options.dependsOn.map { context.expand($0, field: "dependsOn") }
        return Stage(
            id: id, service: service?.name, dependsOn: unique(after + explicit),
            timeoutSeconds: component.options.timeout?.inSeconds,
            retry: component.options.retries.map { RetryPolicy(attempts: $0.count, backoffSeconds: $0.backoff.inSeconds) },
            condition: runtimeCondition, secrets: component.options.secrets,
            environment: component.options.environment, spec: spec)
    }

    private func reportServiceStagesOutsideEachService(_ steps: [Step]) {
        for step in steps {
            let loose: [any StageComponent] = switch step {
            case .stage(let component): [component]
            case .parallel(let components): components
            case .eachService: []
            }
            for component in loose where component.needsService {
                let id = component.options.name ?? component.defaultName
                problems.add(
                    "stage '\(id)': a \(component.defaultName) stage belongs to a service; put it inside EachService { }")
            }
        }
    }

    private func reportDuplicates(_ names: [String], what: String) {
        var seen: Set<String> = []
        for name in names {
            if name.isEmpty { problems.add("a \(what) has an empty name") }
            if !seen.insert(name).inserted { problems.add("\(what) '\(name)' is declared twice") }
        }
    }

    private func unique(_ ids: [String]) -> [String] {
        var seen: Set<String> = []
        return ids.filter { seen.insert($0).inserted }
    }
}
