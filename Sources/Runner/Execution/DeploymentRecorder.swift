import Foundation
import PipelineDSL
import StageContract

/// Records deployments as a run's stages end, from what the stages claim (`DeploymentClaim`): a deploy counts when
/// the stage that claims it succeeded, a rollback whatever the end of the stage that made it. The runner adds what
/// only it knows: who approved, the trigger, and the commit its state recorded for a revision a rollback returned to.
struct DeploymentRecorder {
    let plan: Plan
    let run: RunRecord
    let folder: RunFolder
    let store: StateStore
    /// The run's secrets: the event a deployment adds is prose for people, masked as the rest.
    let masker: SecretMasker

    /// The stage kinds that make claims; a file another stage (a shell command) leaves in claims/ is not one.
    static let claimingKinds: Set<StageKind> = [.updateService, .healthCheck, .rollback]

    /// Records what the end of `stage` means; true when a stage that failed rolled its service back. Only the
    /// built-in stages that change a service claim, and only about their own service.
    func stageEnded(_ stage: Stage, status: StageStatus) throws -> Bool {
        guard Self.claimingKinds.contains(stage.kind), let service = stage.service,
            let claim = try DeploymentClaim.read(stage: stage.id, in: folder), claim.service == service
        else { return false }
        switch (claim.kind, status) {
        case (.deploy, .succeeded), (.rollback, .succeeded):
            try record(claim)
            return false
        case (.rollback, .failed), (.rollback, .timedOut), (.rollback, .cancelled):
            try record(claim)
            return true
        default:
            return false
        }
    }

    /// For a stage that ended without success and whose rollback failed (or was not made on cancel): where its
    /// service was left and what to run.
    func leftBehind(_ stage: Stage, status: StageStatus) -> String? {
        guard let service = stage.service, !status.letsDependentsRun,
            let report = values(of: stage.id).flatMap({ try? FlatValues.decode(RollbackReport.self, from: $0) }),  // no report: nothing was left
            !report.rolledBack
        else { return nil }
        let deploy = plan.stages.first { $0.kind == .updateService && $0.service == service }
        let deployed = deploy.flatMap { values(of: $0.id) }.flatMap { try? FlatValues.decode(DeployOutput.self, from: $0) }  // unknown: said so below
        let revision = report.cancelledDuring ?? deployed?.taskDefinitionArn ?? "its new revision"
        let why = report.rollbackError.map { "rolling back to \(deployed?.previousTaskDefinition ?? "what it ran before") failed: \($0)" }
            ?? "not rolled back (--on-cancel leave)"
        return "\(service) was left on \(revision) (\(why)); put it back with `pipeline rollback \(service) --env \(plan.environment.name) --to previous`"
    }

    private func record(_ claim: DeploymentClaim) throws {
        var sha = claim.sha
        var image = claim.image
        var definition = claim.taskDefinition
        if claim.kind == .rollback, sha == nil {
            // What commit runs again: the last deployment of that task definition, else the image's SHA tag.
            let earlier = try store.deployments(service: claim.service, environment: plan.environment.name)
                .first { $0.taskDefinitionArn == claim.taskDefinitionArn }
            image = image.flatMap { $0.isEmpty ? nil : $0 } ?? earlier?.image
            sha = earlier?.sha ?? image.flatMap(ImageReference.commit(inTag:))
            definition = definition ?? earlier?.taskDefinition
        }
        let digest = claim.image == image ? claim.digest : image.flatMap(ImageReference.digest(of:))
        // Who let it through: the approvals at the run's gates.
        let approvers = try plan.stages.filter { $0.kind == .approval }.flatMap { gate in
            try store.approvals(run: run.id, stage: gate.id).filter { $0.decision == .approved }.map(\.user)
        }
        let kind: DeploymentRecord.Kind = claim.kind == .deploy ? .deploy : .rollback
        try store.recordDeployment(
            DeploymentRecord(
                run: run.id, environment: plan.environment.name, service: claim.service, kind: kind, sha: sha ?? "", image: image,
                digest: digest, taskDefinitionArn: claim.taskDefinitionArn, taskDefinition: definition,
                previousTaskDefinitionArn: claim.previousTaskDefinitionArn, trigger: run.trigger,
                approvedBy: approvers.isEmpty ? nil : Array(Set(approvers)).sorted().joined(separator: ", "),
                buildKey: claim.kind == .deploy ? claim.buildKey : nil))
        try store.addEvent(
            run.id, stage: nil, kind: "deployment.\(kind.rawValue)",
            message: masker.mask("\(claim.service): \(sha.map { String($0.prefix(12)) } ?? "unknown commit") on \(claim.taskDefinitionArn)"))
    }

    /// A stage's outputs: published (`.json`, after success) or as the stage left them (`.env`).
    private func values(of stage: String) -> [String: String]? {
        // Unreadable outputs only lose the detail of a message.
        if let published = try? folder.publishedOutputs(of: stage) { return published }
        return try? folder.writtenOutputs(of: stage)
    }
}
