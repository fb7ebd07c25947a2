import Foundation

/// What a stage says it did to a service, which the runner records as given: a deploy of the run's commit (written
/// by the stage that verifies it: the health check, else the deploy stage), or a rollback (a failed rollout or
/// health check that put the service back, or `pipeline rollback`). The runner adds only what it alone knows
/// (who approved, the trigger) and, for a rollback whose commit the stage cannot know, the commit its state
/// recorded for that task definition.
public struct DeploymentClaim: Codable, Sendable, Equatable {
    /// A deploy or a rollback.
    public enum Kind: String, Codable, Sendable { case deploy, rollback }

    public var kind: Kind
    /// The plan's service name.
    public var service: String
    /// The commit the service runs now (nil: the stage cannot tell, as after an automatic rollback).
    public var sha: String?
    /// The image, by digest where known.
    public var image: String?
    /// The image's manifest digest.
    public var digest: String?
    /// The task definition (revision) it runs.
    public var taskDefinitionArn: String
    /// The rendered task definition, to register again should the revision be deregistered.
    public var taskDefinition: String?
    /// What it ran before (for a deploy).
    public var previousTaskDefinitionArn: String?
    /// Whether the stage that claims it ended well for this to hold: a deploy counts only when its stage succeeds;
    /// a rollback counts whatever the stage's end (a failed deploy that was rolled back still failed).
    public var holdsOnFailure: Bool { kind == .rollback }

    public init(
        kind: Kind, service: String, sha: String?, image: String?, digest: String? = nil, taskDefinitionArn: String,
        taskDefinition: String? = nil, previousTaskDefinitionArn: String? = nil
    ) {
        self.kind = kind
        self.service = service
        self.sha = sha
        self.image = image
        self.digest = digest ?? image.flatMap { image in image.range(of: "@").map { String(image[$0.upperBound...]) } }
        self.taskDefinitionArn = taskDefinitionArn
        self.taskDefinition = taskDefinition
        self.previousTaskDefinitionArn = previousTaskDefinitionArn
    }

    /// Writes the claim of `stage` (replacing an earlier attempt's).
    public func write(stage: String, in folder: RunFolder) throws {
        let file = folder.claimFile(stage)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: file, options: .atomic)
    }

    /// The claim `stage` left, if any; a claim that cannot be read is an error.
    public static func read(stage: String, in folder: RunFolder) throws -> DeploymentClaim? {
        let file = folder.claimFile(stage)
        guard let data = FileManager.default.contents(atPath: file.path) else { return nil }
        do {
            return try JSONDecoder().decode(DeploymentClaim.self, from: data)
        } catch {
            throw RunFolderError("the deployment claim of stage '\(stage)' (\(file.path)) is unreadable: \(error)")
        }
    }
}
