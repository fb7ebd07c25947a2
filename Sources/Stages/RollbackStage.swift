import AWS
import Foundation
import PipelineDSL

/// The stage `pipeline rollback` runs: puts the service back on the chosen task definition (registering its stored
/// definition again when the revision is INACTIVE), waits until it is stable and checks its health. Its outputs
/// tell the runner what to record.
enum RollbackStage {
    static func run(_ spec: RollbackSpec, plan: Plan, environment: [String: String]) async -> Int32 {
        let outputs = StageOutputFile(environment: environment)
        do {
            let client = try StageAWS.client(for: plan.environment, environment: environment)
            let result = try await ServiceRollback.perform(
                spec.update, to: spec.taskDefinitionArn, storedDefinition: spec.taskDefinition, healthCheck: spec.healthCheck,
                client: client, environment: environment, artifacts: environment["PIPELINE_ARTIFACTS"].map { URL(filePath: $0) })
            try outputs.set([
                "taskDefinitionArn": result.taskDefinitionArn, "image": result.image ?? spec.image ?? "", "sha": spec.sha,
                "healthy": result.healthy.map { String($0) } ?? "unchecked",
            ])
            if result.healthy == false {
                FileHandle.standardError.write(Data("error: \(spec.service) runs \(result.taskDefinitionArn) again but is \(result.health ?? "not healthy")\n".utf8))
                return 1
            }
            print("\(spec.service) is back on \(result.taskDefinitionArn)\(result.health.map { "; \($0)" } ?? "")")
            return 0
        } catch {
            FileHandle.standardError.write(Data("error: rolling \(spec.service) back to \(spec.taskDefinitionArn): \(error)\n".utf8))
            return 1
        }
    }
}
