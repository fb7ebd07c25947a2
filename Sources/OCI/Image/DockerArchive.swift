import Foundation
import Hashing

/// A `docker save` archive: `manifest.json` naming each image's config and layer tars. Pushed as an OCI image
/// manifest whose layers are the uncompressed layer tars, hashed here (the archive does not say their digests).
struct DockerArchive {
    let archive: TarArchive

    init(_ archive: TarArchive) { self.archive = archive }

    private struct Entry: Decodable {
        let Config: String
        let RepoTags: [String]?
        let Layers: [String]
    }

    func image(reference: String?) throws(ImageError) -> LocalImage {
        let describe = "docker archive \(archive.file.path)"
        guard let entries = try? JSONDecoder().decode([Entry].self, from: try archive.contents("manifest.json")), !entries.isEmpty else {
            throw ImageError("the manifest.json of the \(describe) lists no images")
        }
        let entry: Entry
        if let reference {
            guard let match = entries.first(where: { ($0.RepoTags ?? []).contains { $0 == reference || $0.hasSuffix(":\(reference)") } }) else {
                throw ImageError("the \(describe) has no image tagged \(reference); it has: \(entries.flatMap { $0.RepoTags ?? [] }.joined(separator: ", "))")
            }
            entry = match
        } else if entries.count == 1 {
            entry = entries[0]
        } else {
            throw ImageError("the \(describe) holds \(entries.count) images (\(entries.flatMap { $0.RepoTags ?? [] }.joined(separator: ", "))); name one")
        }
        let configBytes = [UInt8](try archive.contents(entry.Config))
        let config = ImageBlob(
            digest: Digest(of: configBytes), size: UInt64(configBytes.count), mediaType: MediaType.ociConfig, source: .bytes(configBytes))
        var layers: [ImageBlob] = []
        for path in entry.Layers {
            guard let member = archive.members[TarArchive.normalize(path)] else { throw ImageError("the \(describe) lacks the layer \(path)") }
            let digest = try hash(member)
            layers.append(
                ImageBlob(
                    digest: digest, size: member.size, mediaType: MediaType.ociLayer,
                    source: .file(archive.file, offset: member.offset, length: member.size)))
        }
        let descriptor = { (blob: ImageBlob) in ["mediaType": blob.mediaType, "digest": "\(blob.digest)", "size": blob.size] as [String: Any] }
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": MediaType.ociManifest, "config": descriptor(config), "layers": layers.map(descriptor),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw ImageError("cannot write the manifest for the \(describe)")
        }
        let bytes = [UInt8](data)
        let root = ImageManifest(digest: Digest(of: bytes), mediaType: MediaType.ociManifest, bytes: bytes)
        var unique: [Digest: ImageBlob] = [:]
        for blob in [config] + layers { unique[blob.digest] = blob }
        let tag = entry.RepoTags?.first.map { ", \($0)" } ?? ""
        return LocalImage(root: root, manifests: [root], blobs: Array(unique.values), origin: "\(describe)\(tag)")
    }

    private func hash(_ member: TarArchive.Member) throws(ImageError) -> Digest {
        guard let handle = try? FileHandle(forReadingFrom: archive.file) else { throw ImageError("cannot open \(archive.file.path)") }
        defer { try? handle.close() }
        let hasher = SHA256()
        var remaining = member.size
        try? handle.seek(toOffset: member.offset)
        while remaining > 0 {
            guard let chunk = try? handle.read(upToCount: Int(min(remaining, 1 << 20))), !chunk.isEmpty else {
                throw ImageError("\(archive.file.path) ends inside the layer \(member.name)")
            }
            chunk.withUnsafeBytes { hasher.update($0) }
            remaining -= UInt64(chunk.count)
        }
        return Digest(hashed: hasher.finish())
    }
}
