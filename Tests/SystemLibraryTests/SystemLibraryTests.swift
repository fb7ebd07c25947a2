import AWS
import Git
import HTTP
import Hashing
import OCI
import Testing

/// One real call into each C library, so a broken system-library target fails here first.
@Suite struct SystemLibraryTests {
    @Test func libgit2ReportsItsVersion() {
        let version = LibGit2.version
        #expect(version.major >= 1)
        #expect(version.minor >= 0)
    }

    @Test func curlEasyHandleTakesAURL() throws {
        let handle = try EasyHandle()
        try handle.setURL("http://127.0.0.1:1/v2/")
        #expect(handle.effectiveURL == "http://127.0.0.1:1/v2/")
        #expect(Curl.info.version.hasPrefix("7.") || Curl.info.version.hasPrefix("8."))
        #expect(Curl.info.ssl?.contains("OpenSSL") == true)
    }

    @Test func openSSLComputesSHA256() {
        // FIPS 180-2, appendix B.1 and the empty string.
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func sha256InPiecesEqualsOneShot() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let pieces = SHA256()
        for chunk in stride(from: 0, to: bytes.count, by: 7_777) {
            pieces.update(bytes[chunk..<min(chunk + 7_777, bytes.count)])
        }
        #expect(pieces.finish() == SHA256.hash(bytes))
    }

    @Test func openSSLComputesHMACSHA256() {
        // RFC 4231, test case 2.
        let mac = HMACSHA256.authenticate(Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8))
        #expect(mac.hexString == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func ociDigestParsesAndComputes() {
        let digest = Digest(of: Array("abc".utf8))
        #expect(digest.description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest(digest.description) == digest)
        #expect(Digest("sha256:ABC") == nil)
        #expect(Digest("md5:" + String(repeating: "0", count: 64)) == nil)
    }

    @Test(arguments: [
        ([:], "https://ecs.us-east-1.amazonaws.com", Endpoint.Origin.standard),
        (["AWS_ENDPOINT_URL": "http://127.0.0.1:5000"], "http://127.0.0.1:5000", .globalVariable),
        (
            ["AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_ECS": "http://127.0.0.1:6000"],
            "http://127.0.0.1:6000", .serviceVariable
        ),
    ])
    func endpointsResolveAsTheCLIDoes(environment: [String: String], url: String, origin: Endpoint.Origin) {
        let endpoint = Endpoint.resolve(.ecs, region: "us-east-1", environment: environment)
        #expect(endpoint == Endpoint(url: url, origin: origin))
    }

    @Test func route53IsGlobal() {
        #expect(AWSService.route53.standardURL(region: "eu-west-1") == "https://route53.amazonaws.com")
        #expect(AWSService.elasticLoadBalancingV2.endpointVariableSuffix == "ELASTIC_LOAD_BALANCING_V2")
    }
}
