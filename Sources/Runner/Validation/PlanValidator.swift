import PipelineDSL
import StageContract

/// Checks a plan before anything runs, and reports every problem at once, each naming its stage.
public struct PlanValidator: Sendable {
    /// A further check, such as the task-definition templates' (which live in the `Stages` module).
    public typealias Check = @Sendable (Plan) -> [String]

    private let checks: [Check]

    /// A validator that also runs `checks`.
    public init(checks: [Check] = []) {
        self.checks = checks
    }

    /// Every problem of `plan`; empty when it can run.
    public func problems(in plan: Plan) -> [String] {
        var found: [String] = []
        if plan.version > Manifest.schemaVersion {
            found.append(
                "the plan has schema version \(plan.version) but this pipeline reads up to \(Manifest.schemaVersion); update pipeline")
        }
        if plan.parallelism < 1 {
            found.append("invalid count: parallelism must be at least 1, got \(plan.parallelism)")
        }
        found += serviceProblems(plan)
        found += idProblems(plan.stages)
        found += NameRules.problems(in: plan)
        found += dependencyProblems(plan.stages)
        found += cycleProblems(plan.stages)
        if let problem = NameRules.problem(with: plan.environment.name) {
            found.append("environment '\(NameRules.shown(plan.environment.name))': the name \(problem); names may use only \(NameRules.allowed)")
        }
        for stage in plan.stages {
            found += StageLimits.problems(of: stage, plan: plan).map { "stage '\(NameRules.shown(stage.id))': \($0)" }
        }
        found += recordProblems(plan.stages)
        for check in checks { found += check(plan) }
        return found
    }

    private func serviceProblems(_ plan: Plan) -> [String] {
        plan.services.compactMap { service in
            (1...65535).contains(service.port)
                ? nil : "service '\(service.name)': invalid count: port must be 1 to 65535, got \(service.port)"
        }
    }

    /// Two DNS stages that would write the same record (two services with one hostname) overwrite each other.
    private func recordProblems(_ stages: [Stage]) -> [String] {
        var writers: [String: [String]] = [:]
        for stage in stages {
            guard case .dnsRecord(let spec) = stage.spec else { continue }
            let name = spec.name.lowercased().hasSuffix(".") ? String(spec.name.lowercased().dropLast()) : spec.name.lowercased()
            writers["\(name) \(spec.record.type)", default: []].append(stage.id)
        }
        return writers.sorted { $0.key < $1.key }.filter { $0.value.count > 1 }.map { record, ids in
            "stages \(ids.map { "'\(NameRules.shown($0))'" }.joined(separator: " and ")) all write the DNS record \(record); give the services different hostnames"
        }
    }

    private func idProblems(_ stages: [Stage]) -> [String] {
        var seen: Set<String> = []
        var reported: Set<String> = []
        var found: [String] = []
        for stage in stages {
            if stage.id.isEmpty { found.append("a \(stage.kind.rawValue) stage has an empty id") }
            if !seen.insert(stage.id).inserted, reported.insert(stage.id).inserted {
                found.append("stage '\(stage.id)': the id is used by more than one stage; give one of them another .id(...)")
            }
        }
        return found
    }

    private func dependencyProblems(_ stages: [Stage]) -> [String] {
        let ids = Set(stages.map(\.id))
        var found: [String] = []
        for stage in stages {
            for dependency in stage.dependsOn where !ids.contains(dependency) {
                found.append(
                    "stage '\(stage.id)': depends on unknown stage '\(dependency)'\(Self.nearest(dependency, in: ids))")
            }
            let referenced: [(String, String?)] = switch stage.spec {
            case .push(let spec): [("build stage", spec.buildStage)]
            case .registerTaskDefinition(let spec): [("push stage", spec.pushStage)]
            case .updateService(let spec): [("register stage", spec.registerStage)]
            default: []
            }
            for case (let what, let id?) in referenced where !ids.contains(id) {
                found.append("stage '\(stage.id)': its \(what) '\(id)' is not in the plan")
            }
        }
        return found
    }

    /// One message per cycle found, printed as `a → b → a`.
    private func cycleProblems(_ stages: [Stage]) -> [String] {
        let byID = Dictionary(stages.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var state: [String: Int] = [:]  // 1 on the path, 2 done
        var path: [String] = []
        var found: [String] = []

        func visit(_ id: String) {
            state[id] = 1
            path.append(id)
            for next in byID[id]?.dependsOn ?? [] where byID[next] != nil {
                switch state[next] {
                case 1:
                    let cycle = Array(path[path.lastIndex(of: next)!...]) + [next]
                    found.append(
                        "stage '\(next)': dependency cycle: \(cycle.joined(separator: " → ")); remove one of these dependencies")
                case nil: visit(next)
                default: break
                }
            }
            path.removeLast()
            state[id] = 2
        }
        for stage in stages where state[stage.id] == nil { visit(stage.id) }
        return found
    }

    private static func nearest(_ id: String, in ids: Set<String>) -> String {
        let close = ids.filter { $0.hasSuffix(id) || id.hasSuffix($0) || $0.lowercased() == id.lowercased() }
        return close.isEmpty ? "" : "; did you mean \(close.sorted().map { "'\($0)'" }.joined(separator: " or "))?"
    }
}
