import AWS
import Foundation
import Git
import PipelineDSL
import Runner
import StageContract
import Stages

/// What a run waiting at its approval gate would change once let through (`pipeline diff` of its commit), worked
/// out when it stops there and kept in its folder, so that the gate shows it: `pipeline status`, the run's JSON and
/// its page. Working it out asks git, the registry, ECS and Route 53 and changes nothing; when it cannot be done the
/// gate shows the rest and says so.
enum GateChanges {
    /// The environment's deployment records of each of `plan`'s services, as the preview takes them.
    static func records(of plan: Plan, store: StateStore) throws -> [String: [ChangePreview.LiveRecord]] {
        var records: [String: [ChangePreview.LiveRecord]] = [:]
        for service in plan.services.map(\.name) {
            records[service] = try store.deployments(service: service, environment: plan.environment.name, limit: 200).map {
                ChangePreview.LiveRecord(sha: $0.sha, digest: $0.digest, taskDefinitionArn: $0.taskDefinitionArn)
            }
        }
        return records
    }

    /// Works out and keeps the changes of `record`, now waiting; `secrets` are masked in what is kept. A failure is
    /// said on stderr and changes nothing else.
    static func keep(
        for record: RunRecord, plan: Plan, stageEnvironment: [String: String], environment: [String: String],
        secrets: [String: [String: String]], store: StateStore
    ) async {
        guard let sha = record.sha, let url = stageEnvironment[StageVariables.source], let cache = stageEnvironment[StageVariables.gitCache] else {
            return  // no commit from a repository: nothing to compare
        }
        do {
            let client = AWSClient(configuration: try StageAWS.configuration(for: plan.environment, environment: environment))
            let folder = RunFolder(root: store.runFolder(record.id))
            let preview = ChangePreview(plan: plan, client: client, environment: environment, pipelinesFolder: folder.root.appending(path: "pipelines"))
            let masker = SecretMasker()
            masker.add(secrets.values.flatMap(\.values))
            // The digests the run takes, when its environment takes only verified ones (the build stages were told).
            let verified = try stageEnvironment[StageVariables.verifiedImages].map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
            let changes = try await preview.services(
                sha: sha, source: GitSource(url: url, cache: URL(filePath: cache)), records: try records(of: plan, store: store), verified: verified
            ).map { change in
                var masked = change
                masked.taskDefinitionDiff = change.taskDefinitionDiff.map(masker.mask)
                masked.dns = change.dns.map(masker.mask)
                masked.notes = change.notes.map(masker.mask)
                return masked
            }
            try folder.writeGateChanges(changes)
        } catch {
            FileHandle.standardError.write(Data(
                "warning: could not work out what run \(record.id) would change past its gate (\(error)); `pipeline diff \(plan.environment.name) --sha \(sha.prefix(12))` shows it\n".utf8))
        }
    }
}
