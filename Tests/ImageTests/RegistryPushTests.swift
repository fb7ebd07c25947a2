import Foundation
import Hashing
import OCI
import Testing
import TestSupport

/// Pushing to a real docker-registry, checked with skopeo.
@Suite struct RegistryPushTests {
    func client(_ registry: LocalRegistry, _ repository: String, _ credentials: RegistryCredentials? = nil) throws -> RegistryClient {
        try RegistryClient(base: registry.url, repository: repository, credentials: StaticRegistryCredentials(credentials))
    }

    func digest(_ data: Data) -> String { "sha256:" + SHA256.hash(data).hexString }

    @Test func aPushIsWhatSkopeoReadsBackAndASecondPushSendsNoBlob() async throws {
        let registry = try LocalRegistry()
        let fixture = ImageFixture.image(layerSizes: [40_000, 70_000, 1000])
        let image = try LocalImage.read(fixture.folder)
        let first = try await ImagePush(client: try client(registry, "team/app")).push(image, tags: ["v1", "staging"])
        #expect(first.digest.description == fixture.digest)
        #expect(first.uploaded == 4 && first.present == 0)
        #expect(digest(try registry.manifest("team/app:v1")) == fixture.digest)
        #expect(digest(try registry.manifest("team/app:staging")) == fixture.digest)

        // Byte for byte: skopeo copies it back out and every blob matches the layout's.
        let outFolder = TemporaryDirectory()
        let out = outFolder.url.appending(path: "out")
        let copied = try skopeo(["copy", "--quiet", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", "--src-tls-verify=false", "docker://\(registry.host)/team/app:v1", "oci:\(out.path):v1"])
        #expect(copied.status == 0, "\(copied.stderr)")
        for blob in fixture.blobs {
            let name = "blobs/sha256/\(blob.dropFirst(7))"
            #expect(try Data(contentsOf: out.appending(path: name)) == (try Data(contentsOf: fixture.folder.appending(path: name))))
        }

        let again = try await ImagePush(client: try client(registry, "team/app")).push(image, tags: ["v1"])
        #expect(again.uploaded == 0 && again.present == 4)
    }

    @Test func largeBlobsGoInChunksFollowingTheLatestLocation() async throws {
        let registry = try LocalRegistry()
        let fixture = ImageFixture.image(layerSizes: [250_000, 10])
        var options = ImagePush.Options()
        options.chunkSize = 64 * 1024
        let report = try await ImagePush(client: try client(registry, "chunked"), options: options).push(try LocalImage.read(fixture.folder), tags: ["v1"])
        #expect(report.uploaded == 3)
        let outFolder = TemporaryDirectory()
        let out = outFolder.url.appending(path: "out")
        #expect(try skopeo(["copy", "--quiet", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", "--src-tls-verify=false", "docker://\(registry.host)/chunked:v1", "oci:\(out.path):v1"]).status == 0)
        let name = "blobs/sha256/\(fixture.blobs[1].dropFirst(7))"
        #expect(try Data(contentsOf: out.appending(path: name)) == (try Data(contentsOf: fixture.folder.appending(path: name))))
    }

    @Test func aMultiPlatformIndexIsPushedWithItsManifests() async throws {
        let registry = try LocalRegistry()
        let fixture = ImageFixture.index()
        let report = try await ImagePush(client: try client(registry, "multi")).push(try LocalImage.read(fixture.folder), tags: ["v1"])
        #expect(report.digest.description == fixture.digest)
        let served = try registry.manifest("multi:v1")
        #expect(digest(served) == fixture.digest)
        let index = try JSONSerialization.jsonObject(with: served) as! [String: Any]
        for child in index["manifests"] as! [[String: Any]] {
            let bytes = try registry.manifest("multi@\(child["digest"] as! String)")
            #expect(digest(bytes) == child["digest"] as? String)
        }
    }

    @Test func blobsAnotherRepositoryHasAreMounted() async throws {
        let registry = try LocalRegistry()
        let imageFixture = ImageFixture.image(seed: 31)
        let image = try LocalImage.read(imageFixture.folder)
        _ = try await ImagePush(client: try client(registry, "base")).push(image, tags: ["v1"])
        var options = ImagePush.Options()
        options.mountFrom = ["nothing-here", "base"]
        let report = try await ImagePush(client: try client(registry, "service"), options: options).push(image, tags: ["v1"])
        #expect(report.mounted == 3 && report.uploaded == 0)
        #expect(digest(try registry.manifest("service:v1")) == image.root.digest.description)
    }

    @Test func aTagOnAnotherDigestIsRefusedUnlessForced() async throws {
        let registry = try LocalRegistry()
        let firstFixture = ImageFixture.image(seed: 41)
        let first = try LocalImage.read(firstFixture.folder)
        let secondFixture = ImageFixture.image(seed: 42)
        let second = try LocalImage.read(secondFixture.folder)
        _ = try await ImagePush(client: try client(registry, "app")).push(first, tags: ["abc123"])
        await #expect {
            try await ImagePush(client: try client(registry, "app")).push(second, tags: ["abc123"])
        } throws: { "\($0)".contains("app:abc123 already points at \(first.root.digest), not at \(second.root.digest); tags are immutable") }
        // Refused before anything was sent: none of the second image's layers are there.
        #expect(try await client(registry, "app").hasBlob(second.blobs[0].digest) == false)
        #expect(digest(try registry.manifest("app:abc123")) == first.root.digest.description)
        var options = ImagePush.Options()
        options.force = true
        _ = try await ImagePush(client: try client(registry, "app"), options: options).push(second, tags: ["abc123"])
        #expect(digest(try registry.manifest("app:abc123")) == second.root.digest.description)
    }

    @Test func basicAuthIsUsedAndARefusalSaysSo() async throws {
        let registry = try LocalRegistry(.basic(user: "AWS", password: "token-1"))
        let imageFixture = ImageFixture.image(seed: 51)
        let image = try LocalImage.read(imageFixture.folder)
        let good = RegistryCredentials(username: "AWS", password: "token-1")
        _ = try await ImagePush(client: try client(registry, "secure", good)).push(image, tags: ["v1"])
        #expect(digest(try registry.manifest("secure:v1", credentials: "AWS:token-1")) == image.root.digest.description)
        await #expect {
            try await ImagePush(client: try client(registry, "secure", RegistryCredentials(username: "AWS", password: "wrong"))).push(image, tags: ["v2"])
        } throws: { "\($0)".contains("refused the credentials for secure (HTTP 401)") && !"\($0)".contains("wrong") }
        await #expect {
            try await ImagePush(client: try client(registry, "secure")).push(image, tags: ["v2"])
        } throws: { "\($0)".contains("wants a user name and password") }
    }

    /// Hands out a stale password until asked for fresh credentials, as an ECR token source does once a token has
    /// expired; counts how often it was asked to refresh.
    final class RotatingCredentials: RegistryCredentialSource, @unchecked Sendable {
        private let lock = NSLock()
        private var refreshed = 0
        var refreshes: Int { lock.withLock { refreshed } }

        func credentials(refresh: Bool) async throws -> RegistryCredentials? {
            lock.withLock {
                if refresh { refreshed += 1 }
                return RegistryCredentials(username: "AWS", password: refreshed > 0 ? "fresh-token" : "expired-token")
            }
        }
    }

    @Test func refusedCredentialsAreFetchedAgainOnceAndThePushGoesOn() async throws {
        let registry = try LocalRegistry(.basic(user: "AWS", password: "fresh-token"))
        let imageFixture = ImageFixture.image(seed: 55)
        let image = try LocalImage.read(imageFixture.folder)
        let source = RotatingCredentials()
        let client = try RegistryClient(base: registry.url, repository: "rotated", credentials: source)
        let report = try await ImagePush(client: client).push(image, tags: ["v1"])
        #expect(report.uploaded == 3)
        #expect(source.refreshes == 1)
        #expect(digest(try registry.manifest("rotated:v1", credentials: "AWS:fresh-token")) == image.root.digest.description)
    }

    @Test func theBearerTokenFlowIsFollowed() async throws {
        let registry = try LocalRegistry(.token(user: "robot", password: "s3cret"))
        let imageFixture = ImageFixture.image(seed: 61)
        let image = try LocalImage.read(imageFixture.folder)
        let report = try await ImagePush(client: try client(registry, "team/tokened", RegistryCredentials(username: "robot", password: "s3cret")))
            .push(image, tags: ["v1"])
        #expect(report.uploaded == 3)
        await #expect {
            try await ImagePush(client: try client(registry, "team/tokened", RegistryCredentials(username: "robot", password: "nope"))).push(image, tags: ["v2"])
        } throws: { "\($0)".contains("the token service of \(registry.host) refused a token for team/tokened (HTTP 401)") }
    }

    @Test func aBlobWhoseBytesDoNotMatchItsDigestIsRefused() async throws {
        let registry = try LocalRegistry()
        let fixture = ImageFixture.image(seed: 71)
        // Same size, other bytes: the layout still reads, the registry's hash tells.
        let layer = fixture.folder.appending(path: "blobs/sha256/\(fixture.blobs[1].dropFirst(7))")
        let size = try Data(contentsOf: layer).count
        try Data(ImageFixture.bytes(size, seed: 999)).write(to: layer)
        await #expect {
            try await ImagePush(client: try client(registry, "damaged")).push(try LocalImage.read(fixture.folder), tags: ["v1"])
        } throws: { "\($0)".contains("another digest for blob \(fixture.blobs[1])") && "\($0)".contains("nothing was tagged") }
        #expect(throws: (any Error).self) { try registry.manifest("damaged:v1") }
    }

    @Test(arguments: [1, 100]) func aRegistryThatDropsUploadsIsRetriedThenGivenUp(drops: Int) async throws {
        let registry = try LocalRegistry()
        let proxy = ServerProcess.script("dropping-proxy", [registry.host, String(drops)])
        let port = try proxy.port()
        let imageFixture = ImageFixture.image(seed: 81)
        let image = try LocalImage.read(imageFixture.folder)
        let client = try RegistryClient(base: "http://127.0.0.1:\(port)", repository: "flaky", credentials: StaticRegistryCredentials(nil))
        var options = ImagePush.Options()
        options.connections = 1
        let push = ImagePush(client: client, options: options)
        if drops == 1 {
            let report = try await push.push(image, tags: ["v1"])
            #expect(report.uploaded == 3)
            #expect(digest(try registry.manifest("flaky:v1")) == image.root.digest.description)
        } else {
            await #expect {
                try await push.push(image, tags: ["v1"])
            } throws: { "\($0)".contains("(after 3 attempts); by then 0 of 3 blobs were in the registry") && "\($0)".contains("nothing was tagged") }
            #expect(throws: (any Error).self) { try registry.manifest("flaky:v1") }
        }
    }
}
