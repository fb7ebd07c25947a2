import Foundation
import Hashing
import OCI
import TestSupport

/// OCI image layouts written by the tests: layers of pseudo-random bytes (a fixed seed), a config, a manifest, or a
/// multi-platform index over two of them.
struct ImageFixture {
    let folder: URL
    let reference: String
    /// The digest of what `reference` names (a manifest, or the index).
    let digest: String
    /// The digests of every config and layer.
    let blobs: [String]
    /// The folder the layout is in, kept as long as the fixture.
    let directory: TemporaryDirectory

    /// Bytes from a xorshift generator seeded with `seed`.
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var out = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            out[index] = UInt8(truncatingIfNeeded: state)
        }
        return out
    }

    static func write(_ bytes: [UInt8], to folder: URL) -> (digest: String, size: Int) {
        let digest = "sha256:" + SHA256.hash(bytes).hexString
        let blobs = folder.appending(path: "blobs/sha256")
        try! FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try! Data(bytes).write(to: blobs.appending(path: String(digest.dropFirst(7))))
        return (digest, bytes.count)
    }

    static func json(_ object: Any) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// One manifest's blobs and bytes, written into `folder`.
    static func manifest(in folder: URL, layerSizes: [Int], seed: UInt64, architecture: String = "amd64") -> (bytes: [UInt8], blobs: [String]) {
        var layers: [[String: Any]] = []
        var digests: [String] = []
        for (index, size) in layerSizes.enumerated() {
            let (digest, length) = write(bytes(size, seed: seed &+ UInt64(index)), to: folder)
            layers.append(["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": length])
            digests.append(digest)
        }
        let config = write(json(["architecture": architecture, "os": "linux", "rootfs": ["type": "layers", "diff_ids": digests]]), to: folder)
        let manifest = json([
            "schemaVersion": 2, "mediaType": MediaType.ociManifest,
            "config": ["mediaType": MediaType.ociConfig, "digest": config.digest, "size": config.size], "layers": layers,
        ])
        return (manifest, [config.digest] + digests)
    }

    /// A layout holding one image.
    static func image(layerSizes: [Int] = [3000, 5000], seed: UInt64 = 1, reference: String = "test", in directory: TemporaryDirectory = TemporaryDirectory()) -> ImageFixture {
        let folder = directory.url.appending(path: "layout-\(seed)")
        let (manifest, blobs) = Self.manifest(in: folder, layerSizes: layerSizes, seed: seed)
        let entry = write(manifest, to: folder)
        finish(folder, entries: [["mediaType": MediaType.ociManifest, "digest": entry.digest, "size": entry.size, "annotations": ["org.opencontainers.image.ref.name": reference]]])
        return ImageFixture(folder: folder, reference: reference, digest: entry.digest, blobs: blobs, directory: directory)
    }

    /// A layout holding a multi-platform index over an amd64 and an arm64 image.
    static func index(seed: UInt64 = 50, in directory: TemporaryDirectory = TemporaryDirectory()) -> ImageFixture {
        let folder = directory.url.appending(path: "index-\(seed)")
        var manifests: [[String: Any]] = []
        var blobs: [String] = []
        for (offset, architecture) in ["amd64", "arm64"].enumerated() {
            let (manifest, parts) = Self.manifest(in: folder, layerSizes: [2000, 1000], seed: seed &+ UInt64(offset * 10), architecture: architecture)
            let written = write(manifest, to: folder)
            manifests.append(["mediaType": MediaType.ociManifest, "digest": written.digest, "size": written.size, "platform": ["architecture": architecture, "os": "linux"]])
            blobs += parts
        }
        let index = write(json(["schemaVersion": 2, "mediaType": MediaType.ociIndex, "manifests": manifests]), to: folder)
        finish(folder, entries: [["mediaType": MediaType.ociIndex, "digest": index.digest, "size": index.size, "annotations": ["org.opencontainers.image.ref.name": "multi"]]])
        return ImageFixture(folder: folder, reference: "multi", digest: index.digest, blobs: blobs, directory: directory)
    }

    private static func finish(_ folder: URL, entries: [[String: Any]]) {
        try! Data(json(["imageLayoutVersion": "1.0.0"])).write(to: folder.appending(path: "oci-layout"))
        try! Data(json(["schemaVersion": 2, "manifests": entries])).write(to: folder.appending(path: "index.json"))
    }
}

/// Runs skopeo and fails the test's expectation through the status.
func skopeo(_ arguments: [String]) throws -> ProcessOutput {
    try runProcess(URL(filePath: "/usr/bin/skopeo"), arguments)
}
