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
    /// What the image is built from (the build stage's key), for a deploy whose image a build stage made or found.
    public var buildKey: String?
    /// Whether the stage that claims it ended well for this to hold: a deploy counts only when its stage succeeds;
    /// a rollback counts whatever the stage's end (a failed deploy that was rolled back still failed).
    public var holdsOnFailure: Bool { kind == .rollback }

    public init(
        kind: Kind, service: String, sha: String?, image: String?, digest: String? = nil, taskDefinitionArn: String,
        taskDefinition: String? = nil, previousTaskDefinitionArn: String? = nil, buildKey: String? = nil
    ) {
        self.buildKey = buildKey
        self.kind = kind
        self.service = service
        self.sha = sha
        self.image = image
        self.digest = digest ?? image.flatMap(ImageReference.digest(of:))
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

    /// The largest claim read: a rendered task definition is at most 64 KiB in ECS; anything much larger is not a
    /// claim a built-in stage made.
    public static let maximumSize = 1 << 20

    /// The claim `stage` left, if any; a claim that cannot be read, is larger than `maximumSize` or is not a claim
    /// is an error.
    public static func read(stage: String, in folder: RunFolder) throws -> DeploymentClaim? {
        let file = folder.claimFile(stage)
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            if FileManager.default.fileExists(atPath: file.path) {
                throw RunFolderError("the deployment claim of stage '\(stage)' (\(file.path)) cannot be opened")
            }
            return nil
        }
        defer { try? handle.close() }  // read-only: closing cannot lose anything
        let data = try handle.read(upToCount: maximumSize + 1) ?? Data()
        guard data.count <= maximumSize else {
            throw RunFolderError("the deployment claim of stage '\(stage)' (\(file.path)) is larger than \(maximumSize) bytes")
        }
        do {
            return try JSONDecoder().decode(DeploymentClaim.self, from: data)
        } catch {
            throw RunFolderError("the deployment claim of stage '\(stage)' (\(file.path)) is not a claim: \(FlatValues.describe(error))")
        }
    }

    /// Checks that this is a claim the runner can record for `service` in a run of `runSHA`: a deploy of the run's
    /// own commit, and well-formed identifiers (a task-definition ARN, a 40-digit commit, a sha256 digest). Throws
    /// saying what is wrong.
    public func check(service expected: String, runSHA: String?) throws {
        func refuse(_ why: String) -> RunFolderError { RunFolderError("its deployment claim is refused: \(why)") }
        guard service == expected else { throw refuse("it is about service '\(service)', not the stage's '\(expected)'") }
        if let sha, !sha.isCommitID { throw refuse("sha '\(sha.prefix(80))' is not a 40-digit lowercase hexadecimal commit") }
        if kind == .deploy, let runSHA, sha != runSHA {
            throw refuse("a deploy of \(sha ?? "no commit") in a run of \(runSHA)")
        }
        let previous = previousTaskDefinitionArn.flatMap { $0.isEmpty ? nil : $0 }  // empty: a service created by the deploy
        for arn in [taskDefinitionArn] + (previous.map { [$0] } ?? []) where !Self.isTaskDefinitionARN(arn) {
            throw refuse("'\(arn.prefix(200))' is not a task-definition ARN")
        }
        if let digest, !Self.isDigest(digest) { throw refuse("digest '\(digest.prefix(100))' is not sha256: and 64 hexadecimal digits") }
        if let buildKey, !Self.isDigest("sha256:" + buildKey) { throw refuse("build key '\(buildKey.prefix(100))' is not 64 hexadecimal digits") }
        if let image, image.isEmpty || image.count > 1024 || image.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7f }) {
            throw refuse("image '\(image.prefix(200))' is not an image reference")
        }
        if let taskDefinition, (try? JSONSerialization.jsonObject(with: Data(taskDefinition.utf8))) as? [String: Any] == nil {
            throw refuse("the rendered task definition is not a JSON object")
        }
    }

    /// `sha256:` and 64 lowercase hexadecimal digits.
    public static func isDigest(_ text: String) -> Bool {
        let digits = text.dropFirst(7)
        return text.hasPrefix("sha256:") && digits.utf8.count == 64 && digits.isLowercaseHex
    }

    /// `arn:PARTITION:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`, as ECS returns it.
    public static func isTaskDefinitionARN(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 7, parts[0] == "arn", parts[1].hasPrefix("aws"), parts[2] == "ecs",
            !parts[3].isEmpty, parts[3].utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 45 }),
            parts[4].utf8.count == 12, parts[4].utf8.allSatisfy({ (48...57).contains($0) }),
            parts[5].hasPrefix("task-definition/"),
            let revision = Int(parts[6]), revision > 0, String(revision) == parts[6]
        else { return false }
        let family = parts[5].dropFirst("task-definition/".count)
        return (1...255).contains(family.utf8.count)
            && family.utf8.allSatisfy { (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) || $0 == 45 || $0 == 95 }
    }
}

extension StringProtocol {
    /// Whether every character is an ASCII hexadecimal digit (`Character.isHexDigit` also takes full-width forms,
    /// which git and AWS do not).
    public var isASCIIHex: Bool {
        utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }
    }

    /// Whether every character is 0-9 or a-f, as git and registries write digests.
    public var isLowercaseHex: Bool {
        utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A full commit id as git writes it: 40 lowercase hexadecimal digits.
    public var isCommitID: Bool { utf8.count == 40 && isLowercaseHex }
}
