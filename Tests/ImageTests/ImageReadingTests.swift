import Foundation
import OCI
import Testing
import TestSupport

/// Reading images from disk: OCI layouts (folder or tar), docker-archives, multi-platform indexes, and damage.
@Suite struct ImageReadingTests {
    @Test func aLayoutIsReadWithEveryBlobOnce() throws {
        let fixture = ImageFixture.image()
        let image = try LocalImage.read(fixture.folder)
        #expect(image.root.digest.description == fixture.digest)
        #expect(Set(image.blobs.map(\.digest.description)) == Set(fixture.blobs))
        #expect(image.manifests.count == 1)
    }

    @Test func anIndexListsItsChildrenBeforeItself() throws {
        let fixture = ImageFixture.index()
        let image = try LocalImage.read(fixture.folder)
        #expect(image.root.digest.description == fixture.digest)
        #expect(image.root.mediaType == MediaType.ociIndex)
        #expect(image.manifests.count == 3 && image.manifests.last == image.root)
        #expect(Set(image.blobs.map(\.digest.description)) == Set(fixture.blobs))
    }

    @Test func aLayoutWithSeveralImagesNeedsAName() throws {
        let directory = TemporaryDirectory()
        let first = ImageFixture.image(seed: 1, reference: "one", in: directory)
        let second = ImageFixture.image(seed: 2, reference: "two", in: directory)
        // Put both into the first layout, as `buildah push` does when it pushes two tags into one layout.
        try FileManager.default.copyItem(
            at: second.folder.appending(path: "blobs/sha256"), to: first.folder.appending(path: "blobs/more"))
        for file in try FileManager.default.contentsOfDirectory(atPath: first.folder.appending(path: "blobs/more").path) {
            let target = first.folder.appending(path: "blobs/sha256/\(file)")
            if !FileManager.default.fileExists(atPath: target.path) {
                try FileManager.default.moveItem(at: first.folder.appending(path: "blobs/more/\(file)"), to: target)
            }
        }
        let index = { (url: URL) in try JSONSerialization.jsonObject(with: Data(contentsOf: url.appending(path: "index.json"))) as! [String: Any] }
        var merged = try index(first.folder)
        merged["manifests"] = (merged["manifests"] as! [Any]) + (try index(second.folder)["manifests"] as! [Any])
        try JSONSerialization.data(withJSONObject: merged).write(to: first.folder.appending(path: "index.json"))

        #expect { try LocalImage.read(first.folder) } throws: { "\($0)".contains("holds 2 images (one, two); name one") }
        #expect(try LocalImage.read(first.folder, reference: "two").root.digest.description == second.digest)
        #expect { try LocalImage.read(first.folder, reference: "three") } throws: { "\($0)".contains("has no image named three; it has: one, two") }
    }

    @Test func damageIsFoundBeforeAnythingIsSent() throws {
        let fixture = ImageFixture.image()
        let manifest = fixture.folder.appending(path: "blobs/sha256/\(fixture.digest.dropFirst(7))")
        var bytes = try Data(contentsOf: manifest)
        bytes[bytes.count - 2] = UInt8(ascii: " ")
        try bytes.write(to: manifest)
        #expect { try LocalImage.read(fixture.folder) } throws: { "\($0)".contains("is damaged: its bytes hash to") }

        let other = ImageFixture.image(seed: 7)
        try FileManager.default.removeItem(at: other.folder.appending(path: "blobs/sha256/\(other.blobs[1].dropFirst(7))"))
        #expect { try LocalImage.read(other.folder) } throws: { "\($0)".contains("lacks the blob \(other.blobs[1])") }
        #expect { try LocalImage.read(URL(filePath: "/nonexistent/layout")) } throws: { "\($0)".contains("does not exist") }
    }

    @Test func aDockerArchiveIsReadAsAnOCIImageOfItsLayers() throws {
        let fixture = ImageFixture.image(seed: 11)
        let directory = TemporaryDirectory()
        let archive = directory.url.appending(path: "image.tar").path
        let copied = try skopeo(["copy", "--quiet", "oci:\(fixture.folder.path):test", "docker-archive:\(archive):example/app:v1"])
        #expect(copied.status == 0, "\(copied.stderr)")
        let image = try LocalImage.read(URL(filePath: archive))
        // The layers are the same bytes (uncompressed in both), so the same digests.
        let layers = Set(image.blobs.filter { $0.mediaType == MediaType.ociLayer }.map(\.digest.description))
        #expect(layers == Set(fixture.blobs.dropFirst()))
        #expect(image.origin.contains("example/app:v1"))
        #expect(try LocalImage.read(URL(filePath: archive), reference: "v1").root == image.root)
    }

    @Test func anOCIArchiveIsReadAsTheLayoutItHolds() throws {
        let fixture = ImageFixture.image(seed: 21)
        let archiveFolder = TemporaryDirectory()
        let archive = archiveFolder.url.appending(path: "image.tar").path
        let copied = try skopeo(["copy", "--quiet", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", "oci:\(fixture.folder.path):test", "oci-archive:\(archive):test"])
        #expect(copied.status == 0, "\(copied.stderr)")
        let image = try LocalImage.read(URL(filePath: archive))
        #expect(image.root.digest.description == fixture.digest)
    }
}
