import AWS
import Foundation
import PipelineDSL
import StageContract

/// In this module a stage context is the contract's (the DSL's `StageContext` is the plan builder's).
typealias StageContext = StageContract.StageContext

/// Runs one built-in stage in its own process (`pipeline __stage RUN_FOLDER STAGE`).
public enum BuiltinStages {
    /// Runs the stage `context` names; returns the process's exit status. Messages go to stderr, which is the stage
    /// log.
    public static func run(_ context: StageContract.StageContext) async -> Int32 {
        switch context.stage.spec {
        case .checkout(let spec): return CheckoutStage.run(spec, context)
        case .build(let spec): return await BuildStage.run(spec, context)
        case .push(let spec): return await PushStage.run(spec, context)
        case .registerTaskDefinition(let spec): return await RegisterStage.run(spec, context)
        case .dnsRecord(let spec): return await DNSStage.run(spec, context)
        case .updateService(let spec): return await UpdateServiceStage.run(spec, context)
        case .healthCheck(let spec): return await HealthCheckStage.run(spec, context)
        case .notify(let spec): return await NotifyStage.run(spec, context)
        case .rollback(let spec): return await RollbackStage.run(spec, context)
        default: break
        }
        if let missing = unavailable[context.stage.kind] {
            FileHandle.standardError.write(
                Data("error: the \(context.stage.kind.rawValue) stage is not available in this build of pipeline yet: \(missing)\n".utf8))
            return 3
        }
        FileHandle.standardError.write(Data("error: no built-in runner for \(context.stage.kind.rawValue) stages\n".utf8))
        return 3
    }

    /// Kinds whose implementation has not landed, and what brings it.
    static let unavailable: [StageKind: String] = [
        .approval: "approval gates are decided by the runner, not run as a process",
    ]
}

extension StageContext {
    /// The AWS client of the run's environment.
    func awsClient() throws(AWSError) -> AWSClient {
        try StageAWS.client(for: plan.environment, environment: processEnvironment)
    }

    /// The deploy stage of `service` in the plan, with its spec.
    func deployStage(of service: String) -> (stage: Stage, spec: UpdateServiceSpec)? {
        for stage in plan.stages {
            if case .updateService(let spec) = stage.spec, spec.service == service { return (stage, spec) }
        }
        return nil
    }

    /// The health-check spec of `service` in the plan.
    func healthCheck(of service: String) -> HealthCheckSpec? {
        for stage in plan.stages {
            if case .healthCheck(let spec) = stage.spec, spec.service == service { return spec }
        }
        return nil
    }

    /// Says `line` on stderr (the stage log's error stream), as `error: LINE`.
    static func fail(_ line: String) {
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
    }
}
