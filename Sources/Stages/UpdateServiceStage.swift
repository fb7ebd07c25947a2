import AWS
import Foundation
import PipelineDSL

/// The deploy stage: points the ECS service at the task definition the register stage made and, unless told not
/// to, waits until ECS calls the rollout done (see `ServiceStability`), polling at the plan's short interval. A
/// rollout that fails puts the service back on the task definition it ran before (see `AutoRollback`).
enum UpdateServiceStage {
    static func run(_ spec: UpdateServiceSpec, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        let outputs = StageOutputFile(environment: environment)
        do {
            let client = try StageAWS.client(for: plan.environment, environment: environment)
            guard let register = spec.registerStage,
                let target = BuiltinStages.outputs(of: register, in: runFolder)["taskDefinitionArn"]
            else { throw StageError("the register stage left no taskDefinitionArn output") }
            let before = try await client.describeService(cluster: spec.cluster, service: spec.ecsService)
            // What ran before the run is recorded once, before the first change; a retry or a resume uses it.
            let (baseline, fresh) = try ServiceBaseline.recordOnce(
                service: spec.service, runFolder: runFolder, attempt: Int(environment["PIPELINE_ATTEMPT"] ?? "") ?? 0,
                live: before.taskDefinition)
            if fresh {
                print("\(spec.ecsService) in \(spec.cluster) runs \(before.taskDefinition); updating to \(target)")
            } else {
                print("\(spec.ecsService) in \(spec.cluster) runs \(before.taskDefinition); before this run it ran \(baseline.taskDefinition) (recorded by attempt \(baseline.attempt)); updating to \(target)")
            }
            // Written before the wait: a failed rollout still tells a rollback where the service was.
            try outputs.set(["previousTaskDefinition": baseline.taskDefinition, "taskDefinitionArn": target])
            let guardian = CancelledRollout(
                service: spec.service, update: spec, baseline: baseline.taskDefinition, target: target, client: client,
                outputs: outputs, environment: environment)
            _ = try await guardian.changing {
                try await client.updateService(cluster: spec.cluster, service: spec.ecsService, taskDefinition: target)
            }
            guard spec.waitForStable else {
                print("updated; not waiting for the rollout (waitForStable is off)")
                return 0
            }
            do {
                let service = try await ServiceRollout.wait(for: target, spec: spec, client: client)
                print("stable: \(target) runs \(service.runningCount)/\(service.desiredCount)")
                try outputs.set(["stable": "true"])
                return 0
            } catch let failure as StageError {
                let stopped = (try? await client.stoppedTaskReasons(cluster: spec.cluster, service: spec.ecsService)) ?? []
                let reasons = stopped.isEmpty ? "" : "; stopped tasks: " + stopped.joined(separator: " | ")
                FileHandle.standardError.write(Data("error: \(spec.ecsService) did not become stable on \(target): \(failure)\(reasons)\n".utf8))
                await AutoRollback.perform(
                    service: spec.service, to: baseline.taskDefinition, plan: plan, client: client, outputs: outputs,
                    reason: "the rollout of \(target) failed")
                return 1
            }
        } catch {
            FileHandle.standardError.write(Data("error: updating \(spec.ecsService) in \(spec.cluster): \(error)\n".utf8))
            return 1
        }
    }
}

/// Waiting for a rollout, shared by deploys and rollbacks.
enum ServiceRollout {
    /// Polls until `target` runs alone and stable (returns the service), or throws a StageError saying why not.
    static func wait(for target: String, spec: UpdateServiceSpec, client: AWSClient) async throws -> ECS.Service {
        var watch = ServiceStability(
            target: target, totalLimit: spec.waitTimeoutSeconds, noProgressLimit: spec.noProgressTimeoutSeconds, at: Date())
        var last = ""
        while true {
            let service = try await client.describeService(cluster: spec.cluster, service: spec.ecsService)
            switch watch.observe(service, at: Date()) {
            case .stable:
                return service
            case .failed(let why):
                throw StageError(why)
            case .waiting(let seen):
                if seen != last { print("waiting: \(seen)") }
                last = seen
            }
            try await Task.sleep(nanoseconds: UInt64(max(0.1, spec.pollIntervalSeconds) * 1_000_000_000))
        }
    }
}
