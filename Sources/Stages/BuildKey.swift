import Foundation
import Git
import OCI
import PipelineDSL
import StageContract

/// What a service's image is made of, as one hash: the git tree of its build context in the commit, its Dockerfile
/// (by content when it lies outside the context), build arguments, target and builder. The same key builds the
/// same image, so a build whose key the registry already has (tag `build-KEY`) is not run again.
public struct BuildKey: Sendable, Equatable {
    /// The key, 64 hex digits.
    public let value: String
    /// The commit that last changed what the key covers (the newest among the context and an outside Dockerfile):
    /// the image is stamped with its time.
    public let since: CommitSummary

    /// The tag that names the image of this key in the service's repository.
    public var tag: String { Self.tag(of: value) }

    /// The tag of key `value`: `build-` and its first 40 hex digits.
    public static func tag(of value: String) -> String { "build-" + value.prefix(40) }

    /// The key of `spec` at the run's commit, read from the run's git mirror; nil (saying why) when the run has
    /// no commit or no source, so that there is nothing to key by.
    static func of(_ spec: BuildImageSpec, builder: String, context: StageContext) throws -> BuildKey? {
        guard let source = context.source, let sha = context.run.sha else {
            print("no build key: the run has no git source and commit, so the image is built every time")
            return nil
        }
        return try of(spec, builder: builder, source: GitSource(url: source.url, cache: source.cache), sha: sha)
    }

    /// The key of `spec` at commit `sha`, read from `source`'s mirror (which is not fetched).
    public static func of(_ spec: BuildImageSpec, builder: String, source: GitSource, sha: String) throws -> BuildKey {
        let contextPath = try repositoryPath(spec.build.context, what: "the build context")
        let dockerfilePath = try repositoryPath(
            contextPath.isEmpty ? spec.build.dockerfile : contextPath + "/" + spec.build.dockerfile, what: "the Dockerfile")
        let insideContext = contextPath.isEmpty || dockerfilePath.hasPrefix(contextPath + "/")
        let paths = [contextPath] + (insideContext ? [] : [dockerfilePath])
        let contents = try source.content(of: paths, at: sha)
        guard let tree = contents[0].objectID else {
            throw StageError("the commit \(sha.prefix(12)) has no \(contextPath.isEmpty ? "root" : contextPath) to build \(spec.service) from; check the service's build context")
        }
        var lines = [
            "pipeline build key v1",
            "context \(contextPath) \(tree)",
            "dockerfile \(dockerfilePath) \(insideContext ? "in the context" : contents[1].objectID ?? "missing")",
            "target \(spec.build.target ?? "-")",
            "builder \(builder)",
        ]
        lines += spec.build.arguments.sorted { $0.key < $1.key }.map { "arg \($0.key)=\($0.value)" }
        let value = Digest(of: Array(lines.joined(separator: "\n").utf8)).hex
        let since = contents.map(\.since).max { $0.time < $1.time } ?? contents[0].since
        return BuildKey(value: value, since: since)
    }

    /// `path` relative to the repository's root, with `.` and `..` resolved ("" for the root); refuses one that
    /// leaves the repository.
    /// The builder a build of `spec` uses here (the one it names, else the first found), which its key includes.
    public static func builder(for spec: BuildImageSpec, environment: [String: String]) throws -> String {
        try BuildStage.pick(spec.build.builder, environment: environment).0
    }

    static func repositoryPath(_ path: String, what: String) throws -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." && !part.isEmpty {
            if part == ".." {
                guard !parts.isEmpty else { throw StageError("\(what) '\(path)' leaves the repository") }
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }
}
