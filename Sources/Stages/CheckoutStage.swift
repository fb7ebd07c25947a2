import Foundation
import Git
import PipelineDSL

/// The checkout stage: writes the run's commit into its workspace from the mirror the run fetched.
enum CheckoutStage {
    static func run(_ spec: CheckoutSpec, _ context: StageContext) -> Int32 {
        guard let source = context.source, let sha = context.run.sha else {
            StageContext.fail("the run has no commit to check out (it was started without a source or commit SHA)")
            return 2
        }
        do {
            try GitSource(url: source.url, cache: source.cache).checkout(
                sha: sha, into: context.workspace, submodules: spec.submodules,
                credentials: GitCredentials.fromEnvironment(context.processEnvironment))
        } catch {
            StageContext.fail("checking out \(sha) from \(source.url): \(error)")
            return 1
        }
        print("checked out \(sha) from \(source.url) into \(context.workspace.path)")
        return 0
    }
}
