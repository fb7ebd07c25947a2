import Foundation
import Git
import PipelineDSL

/// The checkout stage: writes the run's commit into its workspace from the mirror the run fetched.
enum CheckoutStage {
    static func run(_ spec: CheckoutSpec, environment: [String: String]) -> Int32 {
        guard let url = environment["PIPELINE_SOURCE"], let cache = environment["PIPELINE_GIT_CACHE"],
            let sha = environment["PIPELINE_SHA"], !sha.isEmpty, let workspace = environment["PIPELINE_WORKSPACE"]
        else {
            FileHandle.standardError.write(Data("error: the run has no commit to check out (PIPELINE_SOURCE, PIPELINE_SHA)\n".utf8))
            return 2
        }
        let source = GitSource(url: url, cache: URL(filePath: cache))
        do {
            try source.checkout(
                sha: sha, into: URL(filePath: workspace), submodules: spec.submodules,
                credentials: GitCredentials.fromEnvironment(environment))
        } catch {
            FileHandle.standardError.write(Data("error: checking out \(sha) from \(url): \(error)\n".utf8))
            return 1
        }
        print("checked out \(sha) from \(url) into \(workspace)")
        return 0
    }
}
