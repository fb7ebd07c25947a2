import Foundation
import Git
import PipelineDSL
import Runner

/// Finds the commit a run deploys: fetches the pipeline's repository into its mirror and resolves `--sha`,
/// `--ref` or the environment's branch to a full SHA, before anything is recorded.
struct SourceResolution {
    let source: GitSource?
    let commit: ResolvedCommit?

    /// Stages that need the commit: checking it out, or building, pushing and registering the image tagged with it.
    static let needCommit: Set<StageKind> = [.checkout, .build, .push, .registerTaskDefinition]

    /// A plan none of whose stages needs the commit, and that asks for none, needs no repository.
    static func resolve(
        plan: PipelineDSL.Plan, workspace: Workspace, sha: String?, ref: String?, environment: [String: String]
    ) throws(LoadError) -> SourceResolution {
        let needsCommit = plan.stages.contains { needCommit.contains($0.kind) }
        guard needsCommit || sha != nil || ref != nil || plan.source.repository != nil else {
            return SourceResolution(source: nil, commit: nil)
        }
        let project = workspace.pipelinesDirectory.deletingLastPathComponent()
        let url: String
        if let repository = plan.source.repository {
            url = repository.contains("://") || repository.hasPrefix("/") || repository.contains("@")
                ? repository : project.appending(path: repository).standardizedFileURL.path
        } else if let found = Repository.discover(from: workspace.pipelinesDirectory) {
            url = found.path
        } else {
            throw LoadError(
                .definition,
                "the pipeline deploys a commit but \(project.path) is not in a git repository; put it in one, or name the repository: Pipeline(\"\(plan.pipeline)\", repository: \"URL\")")
        }
        if let problem = GitCredentials.problem(in: environment) { throw LoadError(.definition, problem) }
        let source = GitSource(url: url, cache: cache(workspace))
        do {
            let commit = try source.resolve(
                sha: sha, ref: ref, branch: plan.environment.branch,
                credentials: GitCredentials.fromEnvironment(environment))
            return SourceResolution(source: source, commit: commit)
        } catch {
            throw LoadError(.definition, "\(error)")
        }
    }

    static func cache(_ workspace: Workspace) -> URL { workspace.home.appending(path: "cache/git") }

    /// What the checkout stage needs to find the mirror again.
    /// What stages learn of the source: where it is, the mirror cache, and the commit's time (`PIPELINE_COMMIT_TIME`,
    /// seconds since 1970, which image builds use as their timestamp so one commit always builds the same image).
    static func stageEnvironment(source: String?, workspace: Workspace, commit: CommitFacts? = nil) -> [String: String] {
        var environment: [String: String] = [:]
        if let commit { environment["PIPELINE_COMMIT_TIME"] = String(Int(commit.time.timeIntervalSince1970)) }
        guard let source else { return environment }
        return environment.merging(["PIPELINE_SOURCE": source, "PIPELINE_GIT_CACHE": cache(workspace).path]) { _, new in new }
    }

    var facts: CommitFacts? {
        commit.map { CommitFacts(author: $0.author, time: $0.time, subject: $0.subject) }
    }
}
