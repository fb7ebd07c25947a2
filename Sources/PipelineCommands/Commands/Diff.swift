import ArgumentParser
import AWS
import Foundation
import Git
import PipelineDSL
import Runner
import Stages

extension PipelineCommand {
    /// `pipeline diff ENV [--sha SHA] [--json]`.
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Show what a run would change, per service, and change nothing.",
            discussion: """
                For the environment's branch tip (or --sha/--ref): per service, the live commit (from the deployment \
                records, else from what ECS runs) and the new one with the commits in between; the live and the new \
                image digest (the registry's image of the new build key, or "to be built"); the diff between the task \
                definition ECS runs and the one a run would register; the DNS records that would change; and the \
                services a run would leave as they are. Exit codes: 0 shown, 2 bad input (nothing asked of AWS).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The environment.")
        var environment: String

        @Option(help: "The commit to compare (full or abbreviated SHA).")
        var sha: String?

        @Option(help: "The branch or tag to compare (default: the environment's branch).")
        var ref: String?

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func validate() throws {
            if sha != nil && ref != nil { throw ValidationError("--sha and --ref name the same thing: give one of them") }
        }

        func run() async throws {
            do {
                try await execute()
            } catch {
                throw error.reported()
            }
        }

        private func execute() async throws {
            let loading = try PlanLoading(global)
            let workspace = loading.workspace
            let plan = try loading.plan(for: environment)
            try workspace.prepareHome()
            let processEnvironment = ProcessInfo.processInfo.environment
            let resolution = try SourceResolution.resolve(plan: plan, workspace: workspace, sha: sha, ref: ref, environment: processEnvironment)
            guard let commit = resolution.commit, let source = resolution.source else {
                throw LoadError(.definition, "the pipeline has no repository to compare with: set its source, or run from the repository")
            }
            let store = try StateAccess.open(workspace)
            let records = try GateChanges.records(of: plan, store: store)
            let client = AWSClient(configuration: try StageAWS.configuration(for: plan.environment, environment: processEnvironment))
            let preview = ChangePreview(plan: plan, client: client, environment: processEnvironment, pipelinesFolder: workspace.pipelinesDirectory)
            // An environment that takes only what another verified: the digests a run would take, and what it refuses.
            var verified: [String: String]?
            var refusals: [String] = []
            if let from = plan.environment.verifiedIn {
                var digests: [String: String] = [:]
                for found in try VerifiedImages.lookup(plan, sha: commit.sha, source: source, store: store) {
                    if let digest = found.record?.digest { digests[found.service] = digest } else { refusals.append(found.refusal(sha: commit.sha, from: from)) }
                }
                verified = digests
            }
            let services = try await preview.services(sha: commit.sha, source: source, records: records, verified: verified)
            if json {
                struct Output: Encodable {
                    let environment: String
                    let sha: String
                    let services: [ChangePreview.Service]
                    /// Why a run would be refused now (an environment that takes only verified images); empty when not.
                    let refusals: [String]
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(Output(environment: environment, sha: commit.sha, services: services, refusals: refusals)), as: UTF8.self))
                try Self.requireComplete(services)
                return
            }
            print("what a run of \(environment) at \(commit.sha.prefix(12)) (\(commit.subject)) would change:")
            for service in services { print(Self.text(service), terminator: "") }
            let skipped = services.filter(\.unchanged).map(\.service)
            if !skipped.isEmpty { print("unchanged, and left as they are: \(skipped.joined(separator: ", "))") }
            if !refusals.isEmpty {
                print("a run of \(environment) at \(commit.sha.prefix(12)) would be refused now, and change nothing:")
                for refusal in refusals { print("  " + refusal) }
            }
            try Self.requireComplete(services)
        }

        /// Fails (exit 1) when something the comparison needs could not be asked: what it printed is then not the
        /// whole answer, and a script gating on it must not take "everything changes" for one.
        static func requireComplete(_ services: [ChangePreview.Service]) throws {
            let incomplete = services.filter { $0.incomplete == true }.map(\.service)
            guard !incomplete.isEmpty else { return }
            FileHandle.standardError.write(Data(
                "error: the comparison is incomplete for \(incomplete.joined(separator: ", ")): what could not be asked is in its notes; check the AWS settings and the registry, then run pipeline diff again\n".utf8))
            throw Exit.stageFailed
        }

        static func text(_ change: ChangePreview.Service) -> String {
            let short = { (sha: String?) in sha.map { String($0.prefix(7)) } ?? "-" }
            if change.unchanged {
                return "\(change.service): unchanged (image \(change.liveDigest ?? "-"), \(change.liveTaskDefinition.map(Self.revision) ?? "-"))\n"
            }
            var out = "\(change.service)\n"
            let from = switch (change.liveFrom, change.liveSha) {
            case ("ecs", nil): " (no deployment record, and the image ECS runs names no commit)"
            case ("ecs", _): " (read from the image ECS runs: no deployment record)"
            case ("none", _): " (nothing runs)"
            default: ""
            }
            out += "  commit  \(short(change.liveSha)) → \(short(change.newSha))\(from)\n"
            for commit in change.commits.prefix(20) { out += "    \(commit.sha.prefix(7)) \(commit.author): \(commit.subject)\n" }
            if change.commits.count > 20 { out += "    … \(change.commits.count - 20) more\n" }
            out += "  image   \(change.liveDigest ?? "-") → \(change.newDigest ?? "to be built")\n"
            if change.taskDefinitionDiff.isEmpty {
                out += "  task definition: as \(change.liveTaskDefinition.map(Self.revision) ?? "-") (reused)\n"
            } else {
                out += "  task definition: \(change.liveTaskDefinition.map(Self.revision) ?? "none") → a new revision\n"
                out += Self.changedLines(change.taskDefinitionDiff).map { "    \($0)\n" }.joined()
            }
            for record in change.dns { out += "  dns     \(record)\n" }
            for note in change.notes { out += "  note    \(note)\n" }
            return out
        }

        /// The changed lines with two lines of context around each, gaps shown as `…`.
        static func changedLines(_ diff: [String], context: Int = 2) -> [String] {
            let changed = diff.indices.filter { !diff[$0].hasPrefix("  ") }
            var keep = Set<Int>()
            for index in changed { for near in max(0, index - context)...min(diff.count - 1, index + context) { keep.insert(near) } }
            var out: [String] = []
            var last = -1
            for index in keep.sorted() {
                if last >= 0 && index > last + 1 { out.append("  …") }
                out.append(diff[index])
                last = index
            }
            return out
        }

        static func revision(_ arn: String) -> String { String(arn.split(separator: "/").last ?? Substring(arn)) }
    }
}
