import AWS
import Foundation
import Git
import OCI
import PipelineDSL
import StageContract

/// What a run of a commit would change, per service, found without changing anything: the live commit (from the
/// deployment records, else from what ECS runs) and the new one with the commits between; the live and the new
/// image digest (the registry's image of the new build key; nil when it is still to be built); the task-definition
/// diff between what ECS runs and what would be registered; the DNS records that would change; and whether the
/// service would be skipped as unchanged.
public struct ChangePreview: Sendable {
    /// One service's change.
    public typealias Service = ServiceChange

    let plan: Plan
    let client: AWSClient
    let environment: [String: String]
    let pipelinesFolder: URL

    public init(plan: Plan, client: AWSClient, environment: [String: String], pipelinesFolder: URL) {
        self.plan = plan
        self.client = client
        self.environment = environment
        self.pipelinesFolder = pipelinesFolder
    }

    /// The change of every deployed service of the plan, for commit `sha` of `source`; `records` are the
    /// environment's deployment records, newest first.
    /// In an environment that requires verification, `verified` holds per service the digest the other environment
    /// verified for what `sha` builds (a service without one would be refused): those digests are what a run takes.
    public func services(sha: String, source: GitSource, records: [String: [LiveRecord]], verified: [String: String]? = nil) async throws -> [Service] {
        var found: [Service] = []
        for update in plan.stages.compactMap({ stage -> UpdateServiceSpec? in if case .updateService(let spec) = stage.spec { spec } else { nil } }) {
            found.append(try await service(update, sha: sha, source: source, records: records[update.service] ?? [], verified: verified))
        }
        return found
    }

    /// A deployment record as the preview needs it (the runner's type lives above this module).
    public struct LiveRecord: Sendable {
        public let sha: String
        public let digest: String?
        public let taskDefinitionArn: String?
        public init(sha: String, digest: String?, taskDefinitionArn: String?) {
            self.sha = sha
            self.digest = digest
            self.taskDefinitionArn = taskDefinitionArn
        }
    }

    private func service(_ update: UpdateServiceSpec, sha: String, source: GitSource, records: [LiveRecord], verified: [String: String]?) async throws -> Service {
        var notes: [String] = []
        // Whether something the comparison needs could not be asked.
        var incomplete = false
        // Live: what ECS runs, and the record of it.
        var liveArn: String?
        do {
            liveArn = try await client.describeService(cluster: update.cluster, service: update.ecsService).taskDefinition
        } catch {
            notes.append("ECS: \(error)")
            incomplete = true
        }
        let record = records.first { $0.taskDefinitionArn == liveArn } ?? (liveArn == nil ? records.first : nil)
        var liveBody: JSONValue?
        var liveImage: String?
        if let liveArn {
            if let described = try? await DescribedDefinition.fetch(liveArn, client: client) {  // unreadable: said below
                liveBody = .object(described.body)
                if case .array(let containers)? = described.body["containerDefinitions"] {
                    liveImage = containers.lazy.compactMap { container -> String? in
                        if case .object(let fields) = container, case .string(let image)? = fields["image"] { image } else { nil }
                    }.first
                }
            } else {
                notes.append("cannot describe \(liveArn)")
                incomplete = true
            }
        }
        let liveSha = record?.sha ?? liveImage.flatMap(ImageReference.commit(inTag:))
        let liveFrom = record != nil ? "record" : liveArn == nil ? "none" : "ecs"
        let liveDigest = record?.digest ?? liveImage.flatMap(ImageReference.digest(of:))

        // New: the image of the build key, the definition it would register, the records.
        var newDigest: String?
        var newImage: String?
        var sourceSha = sha
        let build = plan.stages.first { if case .build(let spec) = $0.spec { spec.service == update.service } else { false } }
        let service = plan.service(named: update.service)
        if case .build(let spec)? = build?.spec, let service {
            do {
                let key = try BuildKey.of(spec, source: source, sha: sha)
                sourceSha = key.since.sha
                let target = try await RegistryTarget.resolve(repository: service.repository, aws: client, environment: environment)
                if let verified, let from = plan.environment.verifiedIn {
                    // Exactly what the other environment verified, whatever the key's tag names.
                    if let digest = verified[service.name] {
                        newDigest = digest
                        newImage = "\(target.repositoryURI)@\(digest)"
                    } else {
                        newImage = "\(target.repositoryURI)@(refused)"
                        notes.append("what this commit builds (build key \(key.value.prefix(12))) has no healthy deploy in \(from): a run of \(plan.environment.name) would be refused")
                    }
                } else {
                    switch try await key.image(in: target.client) {
                    case .found(let manifest):
                        newDigest = manifest.digest.description
                        newImage = "\(target.repositoryURI)@\(manifest.digest)"
                    case .otherKey:
                        newImage = "\(target.repositoryURI)@(to be built)"
                        notes.append("\(service.repository):\(key.tag) names an image that is not of this build key: the run would build it and put the tag back")
                    case .none:
                        newImage = "\(target.repositoryURI)@(to be built)"
                        notes.append("\(service.repository) has no image of build key \(key.value.prefix(12)) yet: the run would build it")
                    }
                }
            } catch {
                notes.append("the new image: \(error)")
                incomplete = true
            }
        }
        var diff: [String] = []
        var definitionChanges = false
        if let register = plan.stages.first(where: { if case .registerTaskDefinition(let spec) = $0.spec { spec.service == update.service } else { false } }),
            case .registerTaskDefinition(let spec) = register.spec, let service
        {
            do {
                let template = try TaskDefinitionTemplate(contentsOf: pipelinesFolder.appending(path: spec.template), path: spec.template)
                var values = TaskDefinitionTemplate.values(environment: plan.environment, service: service)
                values["image"] = newImage ?? "\(service.repository):\(sha)"
                values["sha"] = sha
                values["sourceSha"] = sourceSha
                let rendered = try template.render(values)
                if let liveBody {
                    definitionChanges = !rendered.isSubset(of: liveBody)
                    diff = Self.diff(Self.lines(liveBody.projected(onto: rendered)), Self.lines(rendered))
                } else {
                    definitionChanges = true
                    diff = Self.lines(rendered).map { "+ " + $0 }
                }
            } catch {
                notes.append("the task definition: \(error)")
                incomplete = true
            }
        }
        var dns: [String] = []
        for case .dnsRecord(let spec) in plan.stages.filter({ $0.service == update.service }).map(\.spec) {
            do {
                guard let zone = try await client.hostedZone(named: spec.zone) else {
                    dns.append("\(spec.name) \(spec.record.type): no hosted zone \(spec.zone)")
                    continue
                }
                let current = try await client.recordSet(zone: zone.id, name: spec.name, type: spec.record.type)
                let wanted = spec.record.alias.map { "alias \($0.dnsName)" } ?? spec.record.values.joined(separator: ", ")
                if let current, DNSStage.matches(current, spec.record) { continue }
                let live = current.map { $0.aliasDNSName.map { "alias \($0)" } ?? $0.values.joined(separator: ", ") } ?? "(none)"
                dns.append("\(spec.name) \(spec.record.type): \(live) → \(wanted)")
            } catch {
                notes.append("Route 53: \(error)")
                incomplete = true
            }
        }
        let commits = (try? source.commits(from: liveSha, to: sha, limit: 50)) ?? []  // a mirror without the live commit: none listed
        let unchanged = newDigest != nil && newDigest == liveDigest && !definitionChanges && dns.isEmpty && notes.isEmpty
        var change = Service(
            service: update.service, liveSha: liveSha, liveFrom: liveFrom, newSha: sha,
            commits: liveSha == sha ? [] : commits.map { .init(sha: $0.sha, author: $0.author, time: $0.time, subject: $0.subject) },
            liveDigest: liveDigest, newDigest: newDigest, liveTaskDefinition: liveArn, taskDefinitionDiff: diff, dns: dns,
            unchanged: unchanged && !incomplete, notes: notes)
        change.incomplete = incomplete ? true : nil
        return change
    }

    /// `value` as pretty JSON with sorted keys, one line each.
    static func lines(_ value: JSONValue) -> [String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"  // JSONValue always encodes
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A line diff of `old` and `new` (longest common subsequence): `- `, `+ ` and `  ` lines; empty when equal.
    static func diff(_ old: [String], _ new: [String]) -> [String] {
        guard old != new else { return [] }
        let n = old.count, m = new.count
        var common = Array(repeating: Array(repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                common[i][j] = old[i] == new[j] ? common[i + 1][j + 1] + 1 : max(common[i + 1][j], common[i][j + 1])
            }
        }
        var out: [String] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, old[i] == new[j] {
                out.append("  " + old[i])
                i += 1
                j += 1
            } else if i < n, j == m || common[i + 1][j] >= common[i][j + 1] {
                out.append("- " + old[i])  // what goes, before what comes in its place
                i += 1
            } else {
                out.append("+ " + new[j])
                j += 1
            }
        }
        return out
    }
}

extension JSONValue {
    /// This value cut down to what `shape` says: objects keep only `shape`'s keys (ECS adds defaults and
    /// bookkeeping a template does not name), arrays are cut element by element.
    func projected(onto shape: JSONValue) -> JSONValue {
        switch (self, shape) {
        case (.object(let mine), .object(let wanted)):
            var kept: [String: JSONValue] = [:]
            for (key, value) in mine { if let part = wanted[key] { kept[key] = value.projected(onto: part) } }
            return .object(kept)
        case (.array(let mine), .array(let wanted)):
            return .array(mine.enumerated().map { index, value in index < wanted.count ? value.projected(onto: wanted[index]) : value })
        default:
            return self
        }
    }
}
