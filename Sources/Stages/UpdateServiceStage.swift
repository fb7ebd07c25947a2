import AWS
import Foundation
import PipelineDSL

/// The deploy stage: points the ECS service at the task definition the register stage made and, unless told not
/// to, waits until ECS calls the rollout done (see `ServiceStability`), polling at the plan's short interval.
enum UpdateServiceStage {
    static func run(_ spec: UpdateServiceSpec, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        do {
            let client = try StageAWS.client(for: plan.environment, environment: environment)
            guard let register = spec.registerStage,
                let target = BuiltinStages.outputs(of: register, in: runFolder)["taskDefinitionArn"]
            else { throw StageError("the register stage left no taskDefinitionArn output") }
            let before = try await client.describeService(cluster: spec.cluster, service: spec.ecsService)
            print("\(spec.ecsService) in \(spec.cluster) runs \(before.taskDefinition); updating to \(target)")
            var result = "previousTaskDefinition=\(before.taskDefinition)\ntaskDefinitionArn=\(target)\n"
            // Written before the wait: a failed rollout still tells a rollback where the service was.
            try write(result, environment: environment)
            _ = try await client.updateService(cluster: spec.cluster, service: spec.ecsService, taskDefinition: target)
            guard spec.waitForStable else {
                print("updated; not waiting for the rollout (waitForStable is off)")
                return 0
            }
            var watch = ServiceStability(
                target: target, totalLimit: spec.waitTimeoutSeconds, noProgressLimit: spec.noProgressTimeoutSeconds, at: Date())
            var last = ""
            while true {
                let service = try await client.describeService(cluster: spec.cluster, service: spec.ecsService)
                switch watch.observe(service, at: Date()) {
                case .stable:
                    print("stable: \(target) runs \(service.runningCount)/\(service.desiredCount)")
                    result += "stable=true\n"
                    try write(result, environment: environment)
                    return 0
                case .failed(let why):
                    FileHandle.standardError.write(Data("error: \(spec.ecsService) did not become stable on \(target): \(why)\n".utf8))
                    return 1
                case .waiting(let seen):
                    if seen != last { print("waiting: \(seen)") }
                    last = seen
                }
                try await Task.sleep(nanoseconds: UInt64(max(0.1, spec.pollIntervalSeconds) * 1_000_000_000))
            }
        } catch {
            FileHandle.standardError.write(Data("error: updating \(spec.ecsService) in \(spec.cluster): \(error)\n".utf8))
            return 1
        }
    }

    private static func write(_ text: String, environment: [String: String]) throws {
        if let file = environment["PIPELINE_OUTPUTS"] { try text.write(toFile: file, atomically: true, encoding: .utf8) }
    }
}
