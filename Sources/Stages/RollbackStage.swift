import AWS
import Foundation
import PipelineDSL
import StageContract

/// The stage `pipeline rollback` runs: puts the service back on the chosen task definition (registering ECS's copy of
/// it again when the revision is INACTIVE), waits until it is stable and checks its health. Its outputs
/// tell the runner what to record.
enum RollbackStage {
    static func run(_ spec: RollbackSpec, _ context: StageContext) async -> Int32 {
        do {
            let client = try context.awsClient()
            let result = try await ServiceRollback.perform(
                spec.update, to: spec.taskDefinitionArn, storedDefinition: spec.taskDefinition, registerInactive: true, healthCheck: spec.healthCheck,
                client: client, context: context)
            let image = result.image ?? spec.image
            try context.outputs.set(
                RollbackOutput(
                    taskDefinitionArn: result.taskDefinitionArn, image: image ?? "", sha: spec.sha,
                    healthy: result.healthy.map { String($0) } ?? "unchecked"))
            if result.healthy == false {
                StageContext.fail("\(spec.service) runs \(result.taskDefinitionArn) again but is \(result.health ?? "not healthy")")
                return 1
            }
            try context.claimRollback(
                service: spec.service, to: result.taskDefinitionArn, image: image, sha: spec.sha, definition: spec.taskDefinition)
            if let repository = spec.repository, let templates = spec.movingTags, let image,
                let reference = ImageReference.digest(of: image) ?? image.split(separator: "/").last?.split(separator: ":").dropFirst().last.map(String.init)
            {
                await MovingTags.move(templates, of: repository, to: reference, context: context)
            }
            print("\(spec.service) is back on \(result.taskDefinitionArn)\(result.health.map { "; \($0)" } ?? "")")
            return 0
        } catch {
            StageContext.fail("rolling \(spec.service) back to \(spec.taskDefinitionArn): \(error)")
            return 1
        }
    }
}
