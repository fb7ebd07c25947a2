import Foundation
import Git
import PipelineDSL
import Runner
import StageContract
import Stages

/// An environment that deploys only what another verified (`requiresVerified(in:)`): before a run of it starts,
/// each service's image must be one a healthy deploy there recorded for the same build key (what the commit builds
/// the service from), or the run is refused with everything it found, and nothing changes.
enum VerifiedImages {
    /// One built service of a run of `sha`: its build key, and the healthy deploy of that key in the environment
    /// the run's must be verified in (nil when there is none), with the last deploy there for the message.
    struct Found {
        let service: String
        let context: String
        let key: BuildKey
        let record: DeploymentRecord?
        let last: DeploymentRecord?

        /// Why a run of `sha` is refused for this service.
        func refusal(sha: String, from: String) -> String {
            let what = "\(service): what \(sha.prefix(7)) builds it from (\(context) as of \(key.since.sha.prefix(7)), build key \(key.value.prefix(12)))"
            guard let last else { return "\(what) has no healthy deploy in \(from); \(from) has verified no image of it yet" }
            let run = last.run.map(String.init) ?? "-"
            if last.buildKey == key.value {
                // Its deploy there was backed out by a rollback since: a rollback withdraws the verification.
                return "\(what) was deployed to \(from) by run \(run) (\(last.digest ?? "-")), and a rollback there backed it out since; a rolled-back image counts as not verified"
            }
            return "\(what) has no healthy deploy in \(from); \(from) last verified \(last.digest ?? "-") (commit \(last.sha.prefix(7)), run \(run)), another build of it"
        }
    }

    /// Per built service of `plan` (which requires verification), what `sha` builds it from and what verified it.
    static func lookup(_ plan: Plan, sha: String, source: GitSource, store: StateStore) throws -> [Found] {
        guard let from = plan.environment.verifiedIn else { return [] }
        var found: [Found] = []
        for stage in plan.stages {
            guard case .build(let spec) = stage.spec else { continue }
            let key: BuildKey
            do {
                key = try BuildKey.of(spec, source: source, sha: sha)
            } catch {
                throw LoadError(.definition, "\(spec.service): cannot tell what \(sha.prefix(12)) builds it from: \(error)")
            }
            let record = try store.verifiedDeployment(service: spec.service, environment: from, buildKey: key.value)
            let last = record == nil
                ? try store.deployments(service: spec.service, environment: from, limit: 200).first { $0.kind == .deploy && $0.digest != nil } : nil
            found.append(Found(service: spec.service, context: spec.build.context, key: key, record: record, last: last))
        }
        return found
    }

    /// What the stages are told of `verified` (the build stages take exactly these digests).
    static func stageEnvironment(_ verified: [String: String]) throws -> [String: String] {
        verified.isEmpty ? [:] : [StageVariables.verifiedImages: String(decoding: try JSONEncoder().encode(verified), as: UTF8.self)]
    }

    /// Per built service, the digest the other environment verified, having said where each comes from; throws a
    /// `LoadError` (exit 2) naming each service that environment never verified, and the last image it did.
    static func check(
        _ plan: Plan, sha: String?, source: GitSource?, store: StateStore, environment: [String: String], rebuild: Bool, quiet: Bool = false
    ) throws -> [String: String] {
        guard let from = plan.environment.verifiedIn else { return [:] }
        let name = plan.environment.name
        if rebuild {
            throw LoadError(.definition, "\(name) deploys only images \(from) verified and builds none, so --rebuild does not apply here")
        }
        guard let sha, let source else {
            throw LoadError(.definition, "\(name) deploys only images \(from) verified, found by what the commit builds; run it with a commit of the pipeline's repository (--sha or --ref)")
        }
        var verified: [String: String] = [:]
        var refusals: [String] = []
        for found in try lookup(plan, sha: sha, source: source, store: store) {
            if let record = found.record, let digest = record.digest {
                verified[found.service] = digest
                if !quiet { print("\(found.service): \(digest), verified in \(from) by run \(record.run.map(String.init) ?? "-") (commit \(record.sha.prefix(7)))") }
            } else {
                refusals.append(found.refusal(sha: sha, from: from))
            }
        }
        guard refusals.isEmpty else {
            throw LoadError(
                .definition,
                ["error: \(name) deploys only images \(from) verified; nothing was started:"] + refusals.map { "  " + $0 }
                    + ["deploy \(sha.prefix(12)) to \(from) first (`pipeline run \(from) --sha \(sha.prefix(12))`), then run \(name) again"],
                verbatim: true)
        }
        return verified
    }
}
