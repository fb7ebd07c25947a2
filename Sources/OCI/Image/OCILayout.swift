import Foundation

/// An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), in a folder or in a tar archive.
struct OCILayout {
    private let describe: String
    private let locate: (Digest) -> BlobSource?
    private let load: (String) throws(ImageError) -> Data

    init(folder: URL) throws(ImageError) {
        describe = "OCI layout \(folder.path)"
        locate = { digest in
            let file = folder.appending(path: "blobs/\(digest.algorithm)/\(digest.hex)")
            guard let size = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? UInt64 else { return nil }
            return .file(file, offset: 0, length: size)
        }
        load = { (name: String) throws(ImageError) -> Data in
            guard let data = FileManager.default.contents(atPath: folder.appending(path: name).path) else {
                throw ImageError("\(folder.path) has no \(name): it is not an OCI image layout")
            }
            return data
        }
    }

    init(archive: TarArchive) {
        describe = "OCI layout in \(archive.file.path)"
        locate = { digest in
            archive.members["blobs/\(digest.algorithm)/\(digest.hex)"].map { .file(archive.file, offset: $0.offset, length: $0.size) }
        }
        load = { (name: String) throws(ImageError) -> Data in try archive.contents(name) }
    }

    func image(reference: String?) throws(ImageError) -> LocalImage {
        guard let index = try? JSONDecoder().decode(ManifestShape.self, from: try load("index.json")), let entries = index.manifests else {
            throw ImageError("the index.json of the \(describe) is not an OCI image index")
        }
        let named = { (entry: Descriptor) in entry.annotations?["org.opencontainers.image.ref.name"] }
        let chosen: Descriptor
        if let reference {
            guard let match = entries.first(where: { named($0) == reference }) else {
                let known = entries.compactMap(named)
                throw ImageError("the \(describe) has no image named \(reference); it has: \(known.isEmpty ? "no named images" : known.joined(separator: ", "))")
            }
            chosen = match
        } else if entries.count == 1 {
            chosen = entries[0]
        } else {
            let known = entries.map { named($0) ?? $0.digest }
            throw ImageError("the \(describe) holds \(entries.count) images (\(known.joined(separator: ", "))); name one (--ref, or LAYOUT:REF)")
        }
        var blobs: [Digest: ImageBlob] = [:]
        var manifests: [ImageManifest] = []
        let root = try walk(chosen, blobs: &blobs, manifests: &manifests, depth: 0)
        let name = named(chosen).map { ", ref \($0)" } ?? ""
        return LocalImage(root: root, manifests: manifests, blobs: blobs.values.sorted { $0.digest.hex < $1.digest.hex }, origin: "\(describe)\(name)")
    }

    /// Reads the manifest `descriptor` names and everything under it; appends manifests children first.
    private func walk(
        _ descriptor: Descriptor, blobs: inout [Digest: ImageBlob], manifests: inout [ImageManifest], depth: Int
    ) throws(ImageError) -> ImageManifest {
        guard depth < 4 else { throw ImageError("the \(describe) nests indexes too deep") }
        let bytes = try blobBytes(descriptor)
        guard let shape = try? JSONDecoder().decode(ManifestShape.self, from: Data(bytes)) else {
            throw ImageError("the manifest \(descriptor.digest) in the \(describe) is not JSON")
        }
        let manifest = ImageManifest(digest: Digest(of: bytes), mediaType: shape.kind(declared: descriptor.mediaType), bytes: bytes)
        if let children = shape.manifests {
            for child in children { _ = try walk(child, blobs: &blobs, manifests: &manifests, depth: depth + 1) }
        } else {
            guard let config = shape.config, let layers = shape.layers else {
                throw ImageError("the manifest \(descriptor.digest) in the \(describe) has no config or layers")
            }
            for part in [config] + layers {
                let blob = try blob(part)
                blobs[blob.digest] = blob
            }
        }
        if !manifests.contains(manifest) { manifests.append(manifest) }
        return manifest
    }

    private func blob(_ descriptor: Descriptor) throws(ImageError) -> ImageBlob {
        guard let digest = Digest(descriptor.digest) else { throw ImageError("the \(describe) names a blob by an unusable digest: \(descriptor.digest)") }
        guard let source = locate(digest) else { throw ImageError("the \(describe) lacks the blob \(digest) its manifest names") }
        if case .file(_, _, let length) = source, length != descriptor.size {
            throw ImageError("the blob \(digest) in the \(describe) has \(length) bytes, but its manifest says \(descriptor.size)")
        }
        return ImageBlob(digest: digest, size: descriptor.size, mediaType: descriptor.mediaType ?? MediaType.ociLayer, source: source)
    }

    private func blobBytes(_ descriptor: Descriptor) throws(ImageError) -> [UInt8] {
        guard let digest = Digest(descriptor.digest) else { throw ImageError("the \(describe) names a manifest by an unusable digest: \(descriptor.digest)") }
        let bytes = [UInt8](try load("blobs/\(digest.algorithm)/\(digest.hex)"))
        guard Digest(of: bytes) == digest else {
            throw ImageError("the manifest \(digest) in the \(describe) is damaged: its bytes hash to \(Digest(of: bytes))")
        }
        return bytes
    }
}
