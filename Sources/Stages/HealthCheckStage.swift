import AWS
import Foundation
import PipelineDSL
import StageContract

/// The health-check stage: asks the deployed service until it is healthy or the deadline passes, keeping every
/// attempt in the artifact `health.jsonl`. When it fails, the service goes back to the task definition it ran
/// before the run (unless the stage says not to).
enum HealthCheckStage {
    static func run(_ spec: HealthCheckSpec, _ context: StageContext) async -> Int32 {
        let outputs = context.outputs
        let deploy = context.deployStage(of: spec.service)
        // What ran before the run: recorded once by the deploy stage; its outputs for runs recorded before that.
        let previous: String?
        // The check is of what this run deployed: a service that runs something else (an earlier attempt of this
        // stage rolled it back before its runner died) is not checked, so that its health is never taken for the
        // new revision's.
        var deployed: (update: UpdateServiceSpec, target: String, client: AWSClient)?
        do {
            previous = try ServiceBaseline.recorded(service: spec.service, folder: context.folder)?.taskDefinition
                ?? deploy.flatMap { try context.outputIfPresent(DeployOutput.self, of: $0.stage.id)?.previousTaskDefinition }
            if let deploy, let target = try context.outputIfPresent(DeployOutput.self, of: deploy.stage.id)?.taskDefinitionArn {
                let client = try context.awsClient()
                let running = try await client.describeService(cluster: deploy.spec.cluster, service: deploy.spec.ecsService).taskDefinition
                if running != target {
                    StageContext.fail("\(deploy.spec.ecsService) runs \(running), not \(target), which this run deployed")
                    if running == previous {
                        // An earlier attempt's rollback: see it through (wait, check), as that attempt would have.
                        try outputs.set(HealthOutput(healthy: false, attempts: nil))
                        await AutoRollback.perform(
                            service: spec.service, to: previous, context: context, client: client,
                            reason: "an earlier attempt of this health check rolled \(spec.service) back")
                    }
                    return 1
                }
                deployed = (deploy.spec, target, client)
            }
        } catch {
            StageContext.fail("cannot tell what \(spec.service) runs: \(error)")
            return 1
        }
        var guardian: CancelledRollout?
        if spec.rollbackOnFailure, let previous, let deployed, deployed.target != previous {
            // Cancelled before the new revision is known healthy: as a cancelled rollout.
            guardian = CancelledRollout(
                service: spec.service, update: deployed.update, baseline: previous, target: deployed.target,
                client: deployed.client, context: context)
        }
        defer { withExtendedLifetime(guardian) {} }
        let outcome = await check(spec, context: context, file: "health.jsonl")
        do {
            try outputs.set(HealthOutput(healthy: outcome.healthy, attempts: outcome.attempts.count))
            if outcome.healthy {
                print(outcome.summary)
                if let deployed, let previous {
                    try await context.claimDeployAndMoveTags(deployed.update, target: deployed.target, previous: previous)
                }
                return 0
            }
        } catch {
            StageContext.fail("\(spec.service) is \(outcome.summary), but that cannot be recorded: \(error)")
            return 1
        }
        StageContext.fail("\(spec.service) at \(spec.host):\(spec.port) is \(outcome.summary)")
        guard spec.rollbackOnFailure else { return 1 }
        do {
            let client = try deployed?.client ?? context.awsClient()
            await AutoRollback.perform(
                service: spec.service, to: previous, context: context, client: client,
                reason: "the health check of \(spec.service) failed")
        } catch {
            StageContext.fail("cannot roll \(spec.service) back: \(error)")
        }
        return 1
    }

    /// Runs the check, printing each attempt and appending it to `artifacts/file` (JSON lines).
    static func check(_ spec: HealthCheckSpec, context: StageContext, file: String) async -> HealthCheckRun.Outcome {
        let prober = HealthProber(connectTo: HealthProber.connectTo(environment: context.processEnvironment))
        let artifacts: URL? = context.artifacts
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

private final class AttemptWriter: Sendable {
    let handle: FileHandle?
    init(handle: FileHandle?) { self.handle = handle }

    func write(_ attempt: HealthAttempt, encoder: JSONEncoder) {
        guard let handle, let data = try? encoder.encode(attempt) else { return }
        handle.write(data + Data("\n".utf8))
    }
}
