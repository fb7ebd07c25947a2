import AWS
import Foundation
import PipelineDSL
import StageContract

/// The deploy stage: points the ECS service at the task definition the register stage made and, unless told not
/// to, waits until ECS calls the rollout done (see `ServiceStability`), polling at the plan's short interval. A
/// rollout that fails puts the service back on the task definition it ran before (see `AutoRollback`).
enum UpdateServiceStage {
    static func run(_ spec: UpdateServiceSpec, _ context: StageContext) async -> Int32 {
        let outputs = context.outputs
        do {
            let client = try context.awsClient()
            guard let register = spec.registerStage else { throw StageError("the deploy of \(spec.service) has no register stage before it") }
            let target = try context.output(RegisterOutput.self, of: register).taskDefinitionArn
            let before = try await client.describeService(cluster: spec.cluster, service: spec.ecsService)
            // What ran before the run is recorded once, before the first change; a retry or a resume uses it.
            let (baseline, fresh) = try ServiceBaseline.recordOnce(
                service: spec.service, folder: context.folder, attempt: context.attempt, live: before.taskDefinition)
            let verifiedLater = context.healthCheck(of: spec.service) != nil
            var settled = ServiceStability(target: target, totalLimit: .infinity, noProgressLimit: .infinity, at: Date())
            if before.taskDefinition == target, settled.observe(before, at: Date()) == .stable {
                // Nothing changed for this service (an unchanged image and definition reuse the revision it runs).
                print("\(spec.ecsService) in \(spec.cluster) already runs \(target), stable with \(before.runningCount)/\(before.desiredCount) tasks: no UpdateService sent")
                var result = DeployOutput(previousTaskDefinition: baseline.taskDefinition, taskDefinitionArn: target)
                result.stable = true
                try outputs.set(result)
                if !verifiedLater { try await context.claimDeployAndMoveTags(spec, target: target, previous: baseline.taskDefinition) }
                return 0
            }
            if fresh {
                print("\(spec.ecsService) in \(spec.cluster) runs \(before.taskDefinition); updating to \(target)")
            } else {
                print("\(spec.ecsService) in \(spec.cluster) runs \(before.taskDefinition); before this run it ran \(baseline.taskDefinition) (recorded by attempt \(baseline.attempt)); updating to \(target)")
            }
            // Written before the wait: a failed rollout still tells a rollback where the service was.
            var result = DeployOutput(previousTaskDefinition: baseline.taskDefinition, taskDefinitionArn: target)
            try outputs.set(result)
            let guardian = CancelledRollout(
                service: spec.service, update: spec, baseline: baseline.taskDefinition, target: target, client: client, context: context)
            let updated = try await guardian.changing {
                try await client.updateService(cluster: spec.cluster, service: spec.ecsService, taskDefinition: target)
            }
            result.deploymentId = updated.deployments.first { $0.status == "PRIMARY" && $0.taskDefinition == target }?.id
            try outputs.set(result)
            guard spec.waitForStable else {
                print("updated; not waiting for the rollout (waitForStable is off)")
                if !verifiedLater { try await context.claimDeployAndMoveTags(spec, target: target, previous: baseline.taskDefinition) }
                return 0
            }
            do {
                let service = try await ServiceRollout.wait(for: target, spec: spec, client: client)
                print("stable: \(target) runs \(service.runningCount)/\(service.desiredCount)")
                result.stable = true
                try outputs.set(result)
                if !verifiedLater { try await context.claimDeployAndMoveTags(spec, target: target, previous: baseline.taskDefinition) }
                return 0
            } catch let failure as StageError {
                let stopped = (try? await client.stoppedTaskReasons(cluster: spec.cluster, service: spec.ecsService)) ?? []  // only adds detail to the message
                let reasons = stopped.isEmpty ? "" : "; stopped tasks: " + stopped.joined(separator: " | ")
                StageContext.fail("\(spec.ecsService) did not become stable on \(target): \(failure)\(reasons)")
                await AutoRollback.perform(
                    service: spec.service, to: baseline.taskDefinition, context: context, client: client,
                    reason: "the rollout of \(target) failed")
                return 1
            }
        } catch {
            StageContext.fail("updating \(spec.ecsService) in \(spec.cluster): \(error)")
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
