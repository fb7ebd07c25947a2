import Foundation
import PipelineDSL

/// Records deployments as a run's stages end: a service whose health check passed (or, without a health check,
/// whose rollout finished) is a deployment of the run's commit; a failed stage whose outputs say `rolledBack=true`,
/// or a `pipeline rollback` stage that succeeded, is a rollback. Reads only the plan and the run folder.
struct DeploymentRecorder {
    let plan: Plan
    let run: RunRecord
    let folder: RunFolder
    let store: StateStore
    let sha: String?

    /// Records what the end of `stage` means; true when it rolled a service back.
    func stageEnded(_ stage: Stage, status: StageStatus) throws -> Bool {
        guard let service = stage.service else { return false }
        switch status {
        case .succeeded:
            let healthChecked = plan.stages.contains { $0.kind == .healthCheck && $0.service == service }
            if stage.kind == .healthCheck || (stage.kind == .updateService && !healthChecked) {
                try recordDeploy(service)
            } else if case .rollback(let spec) = stage.spec {
                let outputs = values(of: stage.id)
                try record(
                    service, kind: .rollback, sha: spec.sha, image: outputs["image"] ?? spec.image,
                    taskDefinitionArn: outputs["taskDefinitionArn"] ?? spec.taskDefinitionArn, taskDefinition: spec.taskDefinition,
                    previous: nil)
            }
            return false
        case .failed, .timedOut, .cancelled:
            let outputs = values(of: stage.id)
            guard outputs["rolledBack"] == "true", let arn = outputs["rolledBackTo"] else { return false }
            // What commit runs again: the last deployment of that task definition, else the image's SHA tag.
            let earlier = try store.deployments(service: service, environment: plan.environment.name).first { $0.taskDefinitionArn == arn }
            let image = outputs["rolledBackImage"].flatMap { $0.isEmpty ? nil : $0 } ?? earlier?.image
            try record(
                service, kind: .rollback, sha: earlier?.sha ?? Self.sha(inTag: image) ?? "", image: image, taskDefinitionArn: arn,
                taskDefinition: earlier?.taskDefinition, previous: nil)
            return true
        default:
            return false
        }
    }

    /// For a stage that ended without success and whose rollback failed (or was not made on cancel): where its
    /// service was left and what to run.
    func leftBehind(_ stage: Stage, status: StageStatus) -> String? {
        guard let service = stage.service, !status.letsDependentsRun else { return nil }
        let outputs = values(of: stage.id)
        guard outputs["rolledBack"] == "false" else { return nil }
        let deploy = plan.stages.first { $0.kind == .updateService && $0.service == service }
        let deployed = deploy.flatMap { values(of: $0.id) } ?? [:]
        let revision = outputs["cancelledDuring"] ?? deployed["taskDefinitionArn"] ?? "its new revision"
        let why = outputs["rollbackError"].map { "rolling back to \(deployed["previousTaskDefinition"] ?? "what it ran before") failed: \($0)" }
            ?? "not rolled back (--on-cancel leave)"
        return "\(service) was left on \(revision) (\(why)); put it back with `pipeline rollback \(service) --env \(plan.environment.name) --to previous`"
    }

    private func recordDeploy(_ service: String) throws {
        guard let register = plan.stages.first(where: { $0.kind == .registerTaskDefinition && $0.service == service }) else { return }
        let registered = values(of: register.id)
        let deploy = plan.stages.first { $0.kind == .updateService && $0.service == service }
        let definition = try? String(contentsOf: folder.artifacts(register.id).appending(path: "task-definition.json"), encoding: .utf8)
        try record(
            service, kind: .deploy, sha: sha ?? "", image: registered["image"], taskDefinitionArn: registered["taskDefinitionArn"],
            taskDefinition: definition, previous: deploy.flatMap { values(of: $0.id)["previousTaskDefinition"] })
    }

    private func record(
        _ service: String, kind: DeploymentRecord.Kind, sha: String, image: String?, taskDefinitionArn: String?, taskDefinition: String?,
        previous: String?
    ) throws {
        let digest = image.flatMap { image in image.range(of: "@").map { String(image[$0.upperBound...]) } }
        // Who let it through: the approvals at the run's gates.
        let approvers = try plan.stages.filter { $0.kind == .approval }.flatMap { gate in
            try store.approvals(run: run.id, stage: gate.id).filter { $0.decision == .approved }.map(\.user)
        }
        try store.recordDeployment(
            DeploymentRecord(
                run: run.id, environment: plan.environment.name, service: service, kind: kind, sha: sha, image: image, digest: digest,
                taskDefinitionArn: taskDefinitionArn, taskDefinition: taskDefinition, previousTaskDefinitionArn: previous,
                trigger: run.trigger, approvedBy: approvers.isEmpty ? nil : Array(Set(approvers)).sorted().joined(separator: ", ")))
        try store.addEvent(
            run.id, stage: nil, kind: "deployment.\(kind.rawValue)",
            message: "\(service): \(sha.isEmpty ? "unknown commit" : String(sha.prefix(12))) on \(taskDefinitionArn ?? "?")")
    }

    /// A stage's outputs: published (`.json`, after success) or as the stage left them (`.env`).
    private func values(of stage: String) -> [String: String] {
        if let published = folder.publishedOutputs(of: stage) { return published }
        guard let text = try? String(contentsOf: folder.outputsFile(stage), encoding: .utf8) else { return [:] }
        return StageOutputs.parse(text)
    }

    /// The SHA an image is tagged with (`repo:<40 hex>`), if it is.
    static func sha(inTag image: String?) -> String? {
        guard let image, !image.contains("@"), let colon = image.lastIndex(of: ":") else { return nil }
        let tag = image[image.index(after: colon)...]
        return tag.count == 40 && tag.allSatisfy(\.isHexDigit) ? String(tag) : nil
    }
}
