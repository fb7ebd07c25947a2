import AWS
import Foundation
import HTTP
import PipelineDSL
import StageContract

/// Putting a service back on an earlier task definition: the one move automatic rollbacks and `pipeline rollback`
/// share. The revision is registered again from its stored definition when it is no longer ACTIVE (ECS refuses to
/// deploy an INACTIVE revision); then the service is updated and waited for, and its health checked.
enum ServiceRollback {
    struct Result {
        /// The task definition the service runs now.
        let taskDefinitionArn: String
        /// The image it runs.
        let image: String?
        /// Whether it passed its health check (nil: it has none).
        let healthy: Bool?
        /// The health check's summary.
        let health: String?
    }

    static func perform(
        _ update: UpdateServiceSpec, to arn: String, storedDefinition: String?, registerInactive: Bool, healthCheck: HealthCheckSpec?,
        client: AWSClient, context: StageContext
    ) async throws -> Result {
        var target = arn
        var images: [String]
        if let described = try await describedIfKnown(arn, client: client) {
            images = described.images
            if described.status == "INACTIVE" {
                // ECS still describes a deregistered revision: its own copy is registered again, as it was (the
                // stored one is masked where it held a secret's value). An automatic rollback registers nothing.
                guard registerInactive else {
                    throw StageError("\(arn) is INACTIVE (deregistered); an automatic rollback registers nothing: `pipeline rollback` registers it again")
                }
                let registered = try await client.registerTaskDefinition(try await registrable(arn, client: client))
                print("\(arn) is INACTIVE: registered ECS's copy of it again as \(registered.taskDefinitionArn)")
                target = registered.taskDefinitionArn
                images = registered.images
            }
        } else {
            // Gone from ECS: the stored definition, unless masking changed it.
            guard registerInactive, let storedDefinition else {
                throw StageError("\(arn) is gone from ECS and no stored definition of it is recorded to register again")
            }
            guard !storedDefinition.contains("***") else {
                throw StageError("\(arn) is gone from ECS, and its stored definition had a secret's value masked out (***), so registering it would not bring the same service back; deploy that commit again with `pipeline run`")
            }
            let registered = try await client.registerTaskDefinition(Data(storedDefinition.utf8))
            print("\(arn) is gone from ECS: registered its stored definition again as \(registered.taskDefinitionArn)")
            target = registered.taskDefinitionArn
            images = registered.images
        }
        let current = try await client.describeService(cluster: update.cluster, service: update.ecsService)
        print("putting \(update.ecsService) in \(update.cluster) back on \(target) (it runs \(current.taskDefinition))")
        _ = try await client.updateService(cluster: update.cluster, service: update.ecsService, taskDefinition: target)
        let service = try await ServiceRollout.wait(for: target, spec: update, client: client)
        print("stable: \(target) runs \(service.runningCount)/\(service.desiredCount)")
        let image = images.first
        guard let healthCheck else { return Result(taskDefinitionArn: target, image: image, healthy: nil, health: nil) }
        let outcome = await HealthCheckStage.check(healthCheck, context: context, file: "rollback-health.jsonl")
        return Result(taskDefinitionArn: target, image: image, healthy: outcome.healthy, health: outcome.summary)
    }
}

/// What a deploy run does when a service's rollout or health check fails: put the service back on the task
/// definition that ran before the run, wait, check its health, and say so in the stage's outputs
/// (`rolledBack=true`, `rolledBackTo=ARN`), from which the runner records a rollback and marks the run rolled back.
enum AutoRollback {
    static func perform(service: String, to previous: String?, context: StageContext, client: AWSClient, reason: String) async {
        let health = context.healthCheck(of: service)
        guard health?.rollbackOnFailure ?? true else {
            print("not rolling back: the health check of \(service) says rollbackOnFailure: false")
            return
        }
        guard let update = context.deployStage(of: service)?.spec else { return }
        guard let previous else {
            print("not rolling back: the task definition live before the run is not known")
            return
        }
        print("rolling \(service) back: \(reason)")
        let result: ServiceRollback.Result
        do {
            result = try await ServiceRollback.perform(
                update, to: previous, storedDefinition: nil, registerInactive: false, healthCheck: health, client: client, context: context)
        } catch {
            StageContext.fail("\(reason), and rolling \(service) back to \(previous) failed too: \(error)")
            do {
                try context.outputs.set(RollbackReport(rolledBack: false, rollbackError: "\(error)"))
            } catch let unrecorded {
                StageContext.fail("and that could not be written to the stage's outputs: \(unrecorded)")
            }
            return
        }
        do {
            try context.outputs.set(
                RollbackReport(
                    rolledBack: true, rolledBackTo: result.taskDefinitionArn, rolledBackImage: result.image,
                    rollbackHealthy: result.healthy.map { String($0) } ?? "unchecked"))
            try context.claimRollback(service: service, to: result.taskDefinitionArn, image: result.image)
        } catch {
            StageContext.fail("\(service) was rolled back to \(result.taskDefinitionArn), but that could not be recorded: \(error)")
        }
        let after = result.health.map { "; after the rollback: \($0)" } ?? ""
        StageContext.fail("\(reason); rolled \(service) back to \(result.taskDefinitionArn)\(after)")
    }
}

extension ServiceRollback {
    /// ECS's own copy of revision `arn` as a RegisterTaskDefinition request: the description without what only ECS
    /// sets, with its tags.
    static func registrable(_ arn: String, client: AWSClient) async throws -> Data {
        guard var body = try await DescribedDefinition.fetch(arn, client: client)?.body else {
            throw StageError("ECS described \(arn) without a definition")
        }
        for key in ["taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt", "registeredBy", "deregisteredAt"] {
            body[key] = nil
        }
        return try JSONEncoder().encode(JSONValue.object(body))
    }

    /// ECS's description of `arn`, or nil when ECS has it no more (it answers a ClientException).
    static func describedIfKnown(_ arn: String, client: AWSClient) async throws(AWSError) -> ECS.TaskDefinition? {
        do {
            return try await client.describeTaskDefinition(arn)
        } catch {
            if error.code == "ClientException" { return nil }
            throw error
        }
    }
}
