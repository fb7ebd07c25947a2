import AWS
import Foundation
import OCI

/// Whether the registry still has an image: ECR's DescribeImages, or for local runs (`PIPELINE_REGISTRY`) the
/// registry itself, which is where the images are then.
public enum ImagePresence {
    /// Throws, saying what to do, unless `image` (`URI@sha256:...` or `URI:TAG`) is in `repository`.
    public static func require(_ image: String, repository: String, aws: AWSClient, environment: [String: String]) async throws {
        let reference = Self.reference(of: image)
        if environment["PIPELINE_REGISTRY"].map({ !$0.isEmpty }) ?? false {
            let target = try await RegistryTarget.resolve(repository: repository, aws: aws, environment: environment)
            guard try await target.client.manifestDigest(reference) != nil else {
                throw StageError("the registry \(target.client.host) has no image \(repository)\(reference.hasPrefix("sha256:") ? "@" : ":")\(reference); push it first")
            }
            return
        }
        let found: [String]?
        if reference.hasPrefix("sha256:") {
            found = try await aws.imageTags(repository: repository, digest: reference)
        } else {
            found = try await aws.imageDigest(repository: repository, tag: reference).map { [$0] }
        }
        guard found != nil else {
            throw StageError("ECR has no image \(repository)\(reference.hasPrefix("sha256:") ? "@" : ":")\(reference) (DescribeImages); it was never pushed, or a lifecycle policy removed it")
        }
    }

    /// The digest or tag an image reference names.
    static func reference(of image: String) -> String {
        if let at = image.lastIndex(of: "@") { return String(image[image.index(after: at)...]) }
        if let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") { return String(image[image.index(after: colon)...]) }
        return "latest"
    }
}
