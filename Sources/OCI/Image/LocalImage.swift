import Foundation
import Hashing

/// Where a blob's bytes are read from when it is pushed.
public enum BlobSource: Sendable, Equatable {
    /// A byte range of a file (a layout's blob file, or a member of a tar archive).
    case file(URL, offset: UInt64, length: UInt64)
    /// Bytes in memory (a manifest or config made here).
    case bytes([UInt8])
}

/// A config or layer blob of an image.
public struct ImageBlob: Sendable, Equatable {
    /// Its digest.
    public let digest: Digest
    /// Its size in bytes.
    public let size: UInt64
    /// Its media type.
    public let mediaType: String
    /// Where its bytes are.
    public let source: BlobSource
}

/// A manifest (image manifest or index) as it will be sent, byte for byte.
public struct ImageManifest: Sendable, Equatable {
    /// sha256 of `bytes`.
    public let digest: Digest
    /// Its media type (the `Content-Type` of the PUT).
    public let mediaType: String
    /// The exact bytes.
    public let bytes: [UInt8]
}

/// An image read from disk, ready to push: the blobs, the manifests in the order they must be sent (an index's
/// children before the index), and the root that gets tagged.
public struct LocalImage: Sendable {
    /// The manifest or index the tags point at.
    public let root: ImageManifest
    /// Every manifest, children first, `root` last.
    public let manifests: [ImageManifest]
    /// Every config and layer, each once.
    public let blobs: [ImageBlob]
    /// What was read (`OCI layout /path, ref abc`), for messages.
    public let origin: String

    /// The total size of the blobs.
    public var blobBytes: UInt64 { blobs.reduce(0) { $0 + $1.size } }

    /// Reads an OCI image layout folder, an OCI layout in a tar, or a `docker save` tar (docker-archive). `reference`
    /// picks one image of a layout that holds several (its `org.opencontainers.image.ref.name`).
    public static func read(_ path: URL, reference: String? = nil) throws(ImageError) -> LocalImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw ImageError("\(path.path) does not exist; give an OCI image layout folder or a docker-archive tar")
        }
        if isDirectory.boolValue {
            return try OCILayout(folder: path).image(reference: reference)
        }
        let archive = try TarArchive(path)
        if archive.members["oci-layout"] != nil && archive.members["index.json"] != nil {
            return try OCILayout(archive: archive).image(reference: reference)
        }
        if archive.members["manifest.json"] != nil {
            return try DockerArchive(archive).image(reference: reference)
        }
        throw ImageError("\(path.path) is a tar archive but neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json)")
    }
}

/// Media types of the OCI image spec and Docker's schema 2.
public enum MediaType {
    /// OCI image manifest.
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    /// OCI image index.
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    /// OCI image config.
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    /// An uncompressed OCI layer.
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    /// Docker schema 2 manifest.
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    /// Docker manifest list.
    public static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

    /// Types that list other manifests.
    public static let indexes: Set = [ociIndex, dockerList]
    /// Every manifest type, for `Accept`.
    public static let manifests = [ociManifest, ociIndex, dockerManifest, dockerList]
}

/// A problem with an image on disk or in a registry.
public struct ImageError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and what to do.
    public let description: String
    /// Whether trying again may help (a dropped connection, a 5xx).
    public let transient: Bool
    /// Whether trying again can never help (an immutable tag naming another image).
    public var permanent = false

    /// An error saying `description`.
    public init(_ description: String, transient: Bool = false) {
        self.description = description
        self.transient = transient
    }
}

/// A descriptor in a manifest or index.
struct Descriptor: Decodable {
    let mediaType: String?
    let digest: String
    let size: UInt64
    let annotations: [String: String]?
    let platform: Platform?

    struct Platform: Decodable {
        let architecture: String
        let os: String
        let variant: String?
    }
}

/// The parts of a manifest or index the push needs.
struct ManifestShape: Decodable {
    let mediaType: String?
    let config: Descriptor?
    let layers: [Descriptor]?
    let manifests: [Descriptor]?

    /// The media type: stated, or told by its shape.
    func kind(declared: String?) -> String {
        mediaType ?? declared ?? (manifests != nil ? MediaType.ociIndex : MediaType.ociManifest)
    }
}
