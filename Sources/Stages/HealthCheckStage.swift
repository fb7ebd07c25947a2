import AWS
import Foundation
import PipelineDSL

/// The health-check stage: asks the deployed service until it is healthy or the deadline passes, keeping every
/// attempt in the artifact `health.jsonl`. When it fails, the service goes back to the task definition it ran
/// before the run (unless the stage says not to).
enum HealthCheckStage {
    static func run(_ spec: HealthCheckSpec, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        let outputs = StageOutputFile(environment: environment)
        let deploy = plan.stages.first { stage in
            if case .updateService(let update) = stage.spec { return update.service == spec.service }
            return false
        }
        // What ran before the run: recorded once by the deploy stage; its outputs for runs recorded before that.
        let previous: String?
        do {
            previous = try ServiceBaseline.recorded(service: spec.service, runFolder: runFolder)?.taskDefinition
                ?? deploy.flatMap { BuiltinStages.outputs(of: $0.id, in: runFolder)["previousTaskDefinition"] }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            return 1
        }
        // The check is of what this run deployed: a service that runs something else (an earlier attempt of this
        // stage rolled it back before its runner died) is not checked, so that its health is never taken for the
        // new revision's.
        var deployed: (update: UpdateServiceSpec, target: String, client: AWSClient)?
        if let deploy, case .updateService(let update) = deploy.spec,
            let target = BuiltinStages.outputs(of: deploy.id, in: runFolder)["taskDefinitionArn"]
        {
            do {
                let client = try StageAWS.client(for: plan.environment, environment: environment)
                let running = try await client.describeService(cluster: update.cluster, service: update.ecsService).taskDefinition
                if running != target {
                    FileHandle.standardError.write(Data("error: \(update.ecsService) runs \(running), not \(target), which this run deployed\n".utf8))
                    if running == previous {
                        // An earlier attempt's rollback: see it through (wait, check), as that attempt would have.
                        try outputs.set(["healthy": "false"])
                        await AutoRollback.perform(
                            service: spec.service, to: previous, plan: plan, client: client, outputs: outputs,
                            reason: "an earlier attempt of this health check rolled \(spec.service) back", environment: environment)
                    }
                    return 1
                }
                deployed = (update, target, client)
            } catch {
                FileHandle.standardError.write(Data("error: cannot tell what \(update.ecsService) runs: \(error)\n".utf8))
                return 1
            }
        }
        var guardian: CancelledRollout?
        if spec.rollbackOnFailure, let previous, let deployed, deployed.target != previous {
            // Cancelled before the new revision is known healthy: as a cancelled rollout.
            guardian = CancelledRollout(
                service: spec.service, update: deployed.update, baseline: previous, target: deployed.target,
                client: deployed.client, outputs: outputs, environment: environment)
        }
        defer { _ = guardian }
        let outcome = await check(spec, environment: environment, artifacts: environment["PIPELINE_ARTIFACTS"].map { URL(filePath: $0) }, file: "health.jsonl")
        if outcome.healthy {
            print(outcome.summary)
            try? outputs.set(["healthy": "true", "attempts": String(outcome.attempts.count)])
            return 0
        }
        FileHandle.standardError.write(Data("error: \(spec.service) at \(spec.host):\(spec.port) is \(outcome.summary)\n".utf8))
        try? outputs.set(["healthy": "false", "attempts": String(outcome.attempts.count)])
        guard spec.rollbackOnFailure else { return 1 }
        do {
            let client = try deployed?.client ?? StageAWS.client(for: plan.environment, environment: environment)
            await AutoRollback.perform(
                service: spec.service, to: previous, plan: plan, client: client, outputs: outputs,
                reason: "the health check of \(spec.service) failed", environment: environment)
        } catch {
            FileHandle.standardError.write(Data("error: cannot roll \(spec.service) back: \(error)\n".utf8))
        }
        return 1
    }

    /// Runs the check, printing each attempt and appending it to `artifacts/file` (JSON lines).
    static func check(_ spec: HealthCheckSpec, environment: [String: String], artifacts: URL?, file: String) async -> HealthCheckRun.Outcome {
        let prober = HealthProber(connectTo: HealthProber.connectTo(environment: environment))
        print("checking \(spec.service) at \(spec.host):\(spec.port): \(describe(spec.probe)), \(spec.consecutiveSuccesses) in a row within \(Int(spec.deadlineSeconds))s")
        let log = artifacts.map { $0.appending(path: file) }
        if let log { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let handle = log.flatMap { try? FileHandle(forWritingTo: $0) }
        defer { try? handle?.close() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let writer = AttemptWriter(handle: handle)
        return await HealthCheckRun(spec).run(prober: prober) { attempt in
            writer.write(attempt, encoder: encoder)
            print("\(attempt.healthy ? "✓" : "✗") \(attempt.detail) in \(attempt.latencyMilliseconds) ms")
        }
    }

    static func describe(_ probe: HealthProbe) -> String {
        switch probe {
        case .http(let http): "HTTP \(http.method) \(http.path)"
        case .grpc(let method): "gRPC \(method)"
        case .grpcHealth(let service): "gRPC grpc.health.v1.Health/Check\(service.isEmpty ? "" : " of \(service)")"
        case .tcp: "TCP connect"
        }
    }
}

private final class AttemptWriter: @unchecked Sendable {
    let handle: FileHandle?
    init(handle: FileHandle?) { self.handle = handle }

    func write(_ attempt: HealthAttempt, encoder: JSONEncoder) {
        guard let handle, let data = try? encoder.encode(attempt) else { return }
        handle.write(data + Data("\n".utf8))
    }
}
