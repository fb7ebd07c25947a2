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
    static func of(_ spec: BuildImageSpec, context: StageContext) throws -> BuildKey? {
        guard let source = context.source, let sha = context.run.sha else {
            print("no build key: the run has no git source and commit, so the image is built every time")
            return nil
        }
        return try of(spec, source: GitSource(url: source.url, cache: source.cache), sha: sha)
    }

    /// The key of `spec` at commit `sha`, read from `source`'s mirror (which is not fetched). The builder in it is
    /// the one the service names (`any` when it names none), so that hosts with different builders installed agree
    /// on a key; symbolic links to the context or the Dockerfile are followed; the `.gitattributes` of the folders
    /// above the context (whose filters the checkout applies) are in it too.
    public static func of(_ spec: BuildImageSpec, source: GitSource, sha: String) throws -> BuildKey {
        let contextPath = try resolved(try repositoryPath(spec.build.context, what: "the build context"), what: "the build context", source: source, sha: sha)
        let dockerfilePath = try resolved(
            try repositoryPath(contextPath.isEmpty ? spec.build.dockerfile : contextPath + "/" + spec.build.dockerfile, what: "the Dockerfile"),
            what: "the Dockerfile", source: source, sha: sha)
        let insideContext = contextPath.isEmpty || dockerfilePath.hasPrefix(contextPath + "/")
        // The attributes files of every folder above the context, and of an outside Dockerfile's folder and those above.
        var above: Set<String> = []
        func addAttributes(of folders: [Substring]) {
            for count in 0...folders.count { above.insert((folders.prefix(count).map(String.init) + [".gitattributes"]).joined(separator: "/")) }
        }
        addAttributes(of: Array(contextPath.split(separator: "/").dropLast()))
        if !insideContext { addAttributes(of: Array(dockerfilePath.split(separator: "/").dropLast())) }
        let attributes = above.sorted()
        let paths = [contextPath] + (insideContext ? [] : [dockerfilePath]) + attributes
        let contents = try source.content(of: paths, at: sha)
        guard let tree = contents[0].objectID else {
            throw StageError("the commit \(sha.prefix(12)) has no \(contextPath.isEmpty ? "root" : contextPath) to build \(spec.service) from; check the service's build context")
        }
        let arguments = spec.arguments(at: sha).sorted { $0.key < $1.key }.map { [$0.key, $0.value] }
        var lines = [
            "pipeline build key v2",
            "context \(contextPath) \(tree)",
            "dockerfile \(dockerfilePath) \(insideContext ? "in the context" : contents[1].objectID ?? "missing")",
            "target \(spec.build.target ?? "-")",
            "builder \(spec.build.builder ?? "any")",
            // JSON, so that no argument's value can pass for another argument.
            "arguments " + String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self),
        ]
        for (path, content) in zip(attributes, contents.suffix(attributes.count)) where content.objectID != nil {
            lines.append("attributes \(path) \(content.objectID!)")
        }
        let value = Digest(of: Array(lines.joined(separator: "\n").utf8)).hex
        let since = contents.filter { $0.objectID != nil }.map(\.since).max { $0.time < $1.time } ?? contents[0].since
        return BuildKey(value: value, since: since)
    }

    /// `path` with symbolic links followed (at most 8), as the checkout will have it; refuses a link out of the
    /// repository.
    static func resolved(_ path: String, what: String, source: GitSource, sha: String) throws -> String {
        var current = path
        for _ in 0..<8 {
            guard !current.isEmpty, let target = try source.content(of: [current], at: sha)[0].linkTarget else { return current }
            let folder = current.split(separator: "/").dropLast().joined(separator: "/")
            guard !target.hasPrefix("/") else { throw StageError("\(what) '\(path)' is a link to \(target), outside the repository") }
            current = try repositoryPath(folder.isEmpty ? target : folder + "/" + target, what: what)
        }
        throw StageError("\(what) '\(path)' is a chain of more than 8 links")
    }

    /// `path` relative to the repository's root, with `.` and `..` resolved ("" for the root); refuses one that
    /// leaves the repository.

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

extension BuildImageSpec {
    /// The build arguments of a build of commit `sha`: `{sha}` and `{shortSha}` filled in (the plan filled the
    /// plan-time placeholders, and refused the others).
    public func arguments(at sha: String) -> [String: String] {
        build.arguments.mapValues {
            $0.replacingOccurrences(of: "{sha}", with: sha).replacingOccurrences(of: "{shortSha}", with: String(sha.prefix(12)))
        }
    }
}

extension BuildKey {
    /// What the registry holds under a key's tag.
    public enum RegistryImage {
        /// No tag: nothing was built for the key yet.
        case none
        /// An image of this key (its label says so).
        case found(ImageManifest)
        /// The tag names an image of another key (its label), or of none (no label): not to be taken.
        case otherKey(ImageManifest, labelled: String?)
    }

    /// What `client`'s repository holds under this key's tag, its label checked.
    public func image(in client: RegistryClient) async throws -> RegistryImage {
        guard let manifest = try await client.manifest(tag) else { return .none }
        let labelled = try await BuildKeyLabel.key(of: manifest, client: client)
        return labelled == value ? .found(manifest) : .otherKey(manifest, labelled: labelled)
    }
}

/// The label every image the build stage builds carries, naming its build key, so that an image found by a key's
/// tag can be checked to be of that key: a tag moved by hand, or a registry that lost track, is then caught before
/// a wrong image is deployed as an unchanged service.
public enum BuildKeyLabel {
    /// The label's name.
    public static let name = "dev.pipeline.build-key"

    /// What the registry's image `manifest` says it was built from: the key in its config's label, or nil when it
    /// has none (an image another tool made). An index is judged by its first image.
    public static func key(of manifest: ImageManifest, client: RegistryClient) async throws -> String? {
        guard let object = try JSONSerialization.jsonObject(with: Data(manifest.bytes)) as? [String: Any] else {
            throw StageError("the manifest \(manifest.digest) is not a JSON object")
        }
        if let children = object["manifests"] as? [[String: Any]] {
            guard let first = children.first?["digest"] as? String, let child = try await client.manifest(first) else { return nil }
            return try await key(of: child, client: client)
        }
        guard let config = (object["config"] as? [String: Any])?["digest"] as? String, let digest = Digest(config) else {
            throw StageError("the manifest \(manifest.digest) names no config")
        }
        let bytes = try await client.smallBlob(digest)
        let document = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        let labels = (document?["config"] as? [String: Any])?["Labels"] as? [String: Any]
        return labels?[name] as? String
    }
}
