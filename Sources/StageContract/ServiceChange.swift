import Foundation

/// What a run would change for one service (see `pipeline diff`): kept in a waiting run's folder when it stops at
/// an approval gate, so that the gate shows it (`pipeline status`, the run's JSON and page) without asking AWS again.
public struct ServiceChange: Codable, Sendable, Equatable {
    /// One commit a deploy adds.
    public struct Commit: Codable, Sendable, Equatable {
        public var sha: String
        public var author: String
        public var time: Date
        public var subject: String

        public init(sha: String, author: String, time: Date, subject: String) {
            self.sha = sha
            self.author = author
            self.time = time
            self.subject = subject
        }
    }

    public var service: String
    /// The commit live now, and where that was read (`record`, `ecs`, or `none` when nothing runs).
    public var liveSha: String?
    public var liveFrom: String
    public var newSha: String
    /// The commits a deploy adds, newest first.
    public var commits: [Commit]
    public var liveDigest: String?
    /// nil: the image of the new build key is not in the registry yet (the run would build it).
    public var newDigest: String?
    public var liveTaskDefinition: String?
    /// The task-definition diff: `- ` what ECS runs, `+ ` what would be registered, two spaces for context.
    public var taskDefinitionDiff: [String]
    /// Records that would change: `NAME TYPE: live → new`.
    public var dns: [String]
    /// Nothing would change: the image, the definition and the records are as live.
    public var unchanged: Bool
    /// What could not be found out, and why.
    public var notes: [String]
    /// Set when something the comparison needs could not be asked (ECS, the registry, Route 53, the template): the
    /// notes say what, and the rest of this change is then not to be trusted. Absent (false) otherwise.
    public var incomplete: Bool?

    public init(
        service: String, liveSha: String?, liveFrom: String, newSha: String, commits: [Commit], liveDigest: String?, newDigest: String?,
        liveTaskDefinition: String?, taskDefinitionDiff: [String], dns: [String], unchanged: Bool, notes: [String]
    ) {
        self.service = service
        self.liveSha = liveSha
        self.liveFrom = liveFrom
        self.newSha = newSha
        self.commits = commits
        self.liveDigest = liveDigest
        self.newDigest = newDigest
        self.liveTaskDefinition = liveTaskDefinition
        self.taskDefinitionDiff = taskDefinitionDiff
        self.dns = dns
        self.unchanged = unchanged
        self.notes = notes
    }
}

extension RunFolder {
    /// What a run waiting at its gate would change, as worked out when it stopped there.
    public var gateChangesFile: URL { root.appending(path: "gate-changes.json") }

    /// Keeps `changes` for the gate (owner-only, replaced whole).
    public func writeGateChanges(_ changes: [ServiceChange]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try OwnerOnly.write(try encoder.encode(changes), to: gateChangesFile)
    }

    /// The changes kept for the gate, if any (nil too when the file cannot be read: the gate shows the rest).
    public func gateChanges() -> [ServiceChange]? {
        guard let data = try? Data(contentsOf: gateChangesFile) else { return nil }  // none kept: nothing to show
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode([ServiceChange].self, from: data)  // unreadable: shown as not worked out
    }
}
