import Foundation
import PipelineDSL

/// Runs one built-in stage in its own process (`pipeline __stage RUN_FOLDER STAGE`).
public enum BuiltinStages {
    /// Runs `stage` of `plan`; returns the process's exit status. Messages go to stderr, which is the stage log.
    public static func run(_ stage: Stage, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        switch stage.spec {
        case .checkout(let spec): return CheckoutStage.run(spec, environment: environment)
        case .build(let spec): return BuildStage.run(spec, environment: environment)
        case .push(let spec): return await PushStage.run(spec, plan: plan, runFolder: runFolder, environment: environment)
        case .registerTaskDefinition(let spec):
            return await RegisterStage.run(spec, plan: plan, runFolder: runFolder, environment: environment)
        case .dnsRecord(let spec):
            return await DNSStage.run(spec, plan: plan, environment: environment)
        case .updateService(let spec):
            return await UpdateServiceStage.run(spec, plan: plan, runFolder: runFolder, environment: environment)
        case .healthCheck(let spec):
            return await HealthCheckStage.run(spec, plan: plan, runFolder: runFolder, environment: environment)
        case .notify(let spec):
            return await NotifyStage.run(spec, environment: environment)
        case .rollback(let spec):
            return await RollbackStage.run(spec, plan: plan, environment: environment)
        default: break
        }
        if let missing = unavailable[stage.kind] {
            FileHandle.standardError.write(
                Data("error: the \(stage.kind.rawValue) stage is not available in this build of pipeline yet: \(missing)\n".utf8))
            return 3
        }
        FileHandle.standardError.write(Data("error: no built-in runner for \(stage.kind.rawValue) stages\n".utf8))
        return 3
    }

    /// The outputs a finished stage of the run left (`outputs/STAGE.json`).
    static func outputs(of stage: String, in runFolder: URL) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: runFolder.appending(path: "outputs/\(stage).json").path) else {
            return [:]
        }
        return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
    }

    /// Kinds whose implementation has not landed, and what brings it.
    static let unavailable: [StageKind: String] = [
        .approval: "approval gates are decided by the runner, not run as a process",
    ]
}
