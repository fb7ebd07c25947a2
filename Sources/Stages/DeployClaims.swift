import Foundation
import PipelineDSL
import StageContract

/// The deployment claims the built-in stages make (see `DeploymentClaim`).
extension StageContext {
    /// Claims that `deploy` put this run's commit on `service`: written by the stage that verified it (the health
    /// check, or the deploy stage when the plan checks no health), from the register stage's outputs and rendering.
    /// The outputs of the build stage whose image push stage `push` pushed, when it has one.
    func buildOutput(behindPush push: String) throws -> BuildOutput? {
        guard case .push(let spec)? = plan.stages.first(where: { $0.id == push })?.spec, let build = spec.buildStage else { return nil }
        return try output(BuildOutput.self, of: build)
    }

    func claimDeploy(_ deploy: UpdateServiceSpec, target: String, previous: String) throws {
        var image: String?
        var definition: String?
        var buildKey: String?
        if let register = deploy.registerStage {
            let registered = try output(RegisterOutput.self, of: register)
            guard registered.taskDefinitionArn == target else {
                throw StageError("the register stage \(register) made \(registered.taskDefinitionArn), but \(deploy.ecsService) was deployed \(target)")
            }
            image = registered.image
            let rendered = folder.artifacts(register).appending(path: RegisterStage.renderedFile)
            if FileManager.default.fileExists(atPath: rendered.path) {
                definition = try String(contentsOf: rendered, encoding: .utf8)
            }
            // The key of the image: register → push → build.
            if case .registerTaskDefinition(let registerSpec)? = plan.stages.first(where: { $0.id == register })?.spec,
                let push = registerSpec.pushStage
            {
                buildKey = try buildOutput(behindPush: push)?.key
            }
        }
        try DeploymentClaim(
            kind: .deploy, service: deploy.service, sha: run.sha, image: image, taskDefinitionArn: target, taskDefinition: definition,
            previousTaskDefinitionArn: previous, buildKey: buildKey
        ).write(stage: stageID, in: folder)
    }

    /// Claims that `service` was put back on `arn` (its commit is the one the runner recorded for that revision,
    /// unless `sha` says).
    func claimRollback(service: String, to arn: String, image: String?, sha: String? = nil, definition: String? = nil) throws {
        try DeploymentClaim(kind: .rollback, service: service, sha: sha, image: image, taskDefinitionArn: arn, taskDefinition: definition)
            .write(stage: stageID, in: folder)
    }
}
