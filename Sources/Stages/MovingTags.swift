import Foundation
import OCI
import PipelineDSL
import StageContract

/// The moving tags of a push (`PushImage(movingTags: ["{env}"])`) follow what the environment runs: where the plan
/// deploys the service, they move only once the new image is deployed and verified (by the stage that claims the
/// deploy: the health check, or the deploy stage when the plan checks no health), so that a run that stops at a
/// gate, is rejected, or fails its checks leaves `sv-user:prod` on what prod runs. Where the plan deploys nothing,
/// the push moves them.
enum MovingTags {
    /// Whether the plan deploys `service`, so that its moving tags wait for the deploy.
    static func followDeploy(of service: String, in plan: Plan) -> Bool {
        plan.stages.contains { if case .updateService(let spec) = $0.spec { spec.service == service } else { false } }
    }

    /// Moves the moving tags of `service`'s push to the image it pushed (`digest`, else the push's output). A tag
    /// that cannot be moved is said in the log and fails nothing: the deploy it follows has happened.
    static func follow(service: String, context: StageContext) async {
        guard let push = context.plan.stages.first(where: { if case .push(let spec) = $0.spec { spec.service == service } else { false } }),
            case .push(let spec) = push.spec, let templates = spec.movingTags, !templates.isEmpty
        else { return }
        guard let digest = try? context.output(PushOutput.self, of: push.id).digest else {  // said: the tags stay
            print("warning: the push of \(service) left no image; its moving tags stay where they were")
            return
        }
        await move(templates, of: spec.repository, to: digest, context: context)
    }

    /// Moves the moving tags `templates` (filled for this run) of `repository` to `reference` (a digest, or a tag
    /// naming the image). A tag that cannot be moved is said in the log and fails nothing.
    static func move(_ templates: [String], of repository: String, to reference: String, context: StageContext) async {
        do {
            let tags = try templates.map { try context.fill($0, field: "the tag") }
            let target = try await RegistryTarget.resolve(repository: repository, aws: try context.awsClient(), environment: context.processEnvironment)
            guard let manifest = try await target.client.manifest(reference) else {
                print("warning: \(repository) has no \(reference) any more; its moving tags \(tags.joined(separator: ", ")) stay where they were")
                return
            }
            var options = ImagePush.Options()
            options.moving = Set(tags)
            _ = try await ImagePush(client: target.client, options: options).tag(manifest, tags: tags) { print($0) }
            print("moved \(tags.map { "\(repository):\($0)" }.joined(separator: ", ")) to \(manifest.digest), which \(context.plan.environment.name) now runs")
        } catch {
            print("warning: the moving tags of \(repository) could not be moved (\(error)); they still name what they named before")
        }
    }
}

extension StageContext {
    /// Claims the deploy (`claimDeploy`) and moves the service's moving tags to the image it now runs.
    func claimDeployAndMoveTags(_ deploy: UpdateServiceSpec, target: String, previous: String) async throws {
        try claimDeploy(deploy, target: target, previous: previous)
        await MovingTags.follow(service: deploy.service, context: self)
    }
}
