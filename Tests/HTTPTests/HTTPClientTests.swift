import Foundation
import HTTP
import Hashing
import TestSupport
import Testing

/// The test server (runner/dev/test-http-server) on a free loopback port.
final class TestServer: @unchecked Sendable {
    let server: ServerProcess
    let port: Int

    init(tls: (cert: String, key: String)? = nil) throws {
        let output = Pipe()
        var arguments = [Project.root.appending(path: "runner/dev/test-http-server").path]
        if let tls { arguments += ["--cert", tls.cert, "--key", tls.key] }
        server = try ServerProcess("/usr/bin/python3", arguments, stdout: output)
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func url(_ path: String, scheme: String = "http", host: String = "127.0.0.1") -> String {
        "\(scheme)://\(host):\(port)\(path)"
    }
}

private func json(_ response: HTTPResponse) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
}

@Suite(.serialized) struct HTTPClientTests {
    let server: TestServer
    let client = HTTPClient(caFile: nil)

    init() throws {
        server = try TestServer()
    }

    @Test func aRequestCarriesItsMethodHeadersAndBody() async throws {
        let body = Array("hello, registry".utf8)
        let response = try await client.send(
            HTTPRequest(method: "PUT", url: server.url("/echo?a=1"), headers: [("X-Test", "yes")], body: .bytes(body)))
        #expect(response.status == 200)
        #expect(response.version == "1.1")
        #expect(response.header("content-type") == "application/json")
        let echo = try json(response)
        #expect(echo["method"] as? String == "PUT")
        #expect(echo["path"] as? String == "/echo?a=1")
        #expect((echo["headers"] as? [String: String])?["X-Test"] == "yes")
        #expect(echo["sha256"] as? String == SHA256.hash(body).hexString)
    }

    @Test func aFileRangeIsSentWithoutReadingTheFileWhole() async throws {
        let folder = TemporaryDirectory()
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let file = folder.url.appending(path: "blob")
        try Data(bytes).write(to: file)
        let response = try await client.send(
            HTTPRequest(method: "PATCH", url: server.url("/echo"), body: .file(file, offset: 1000, length: 2_000_000)))
        let echo = try json(response)
        #expect(echo["length"] as? Int == 2_000_000)
        #expect(echo["sha256"] as? String == SHA256.hash(bytes[1000..<2_001_000]).hexString)
    }

    @Test func connectionsAreReused() async throws {
        let first = try json(try await client.send(HTTPRequest(url: server.url("/echo"))))
        let second = try json(try await client.send(HTTPRequest(url: server.url("/echo"))))
        #expect(first["port"] as? Int == second["port"] as? Int)
    }

    @Test func statusCodesComeBackAsTheyAre() async throws {
        #expect(try await client.send(HTTPRequest(url: server.url("/status/404"))).status == 404)
        #expect(try await client.send(HTTPRequest(method: "HEAD", url: server.url("/status/503"))).status == 503)
    }

    @Test func aLargeBodyStreamsToItsHandler() async throws {
        final class Counter: @unchecked Sendable { var bytes = 0; var chunks = 0 }
        let counter = Counter()
        let response = try await client.send(HTTPRequest(url: server.url("/bytes?n=50000000"), timeout: 60)) { chunk in
            counter.bytes += chunk.count
            counter.chunks += 1
        }
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(counter.bytes == 50_000_000)
        #expect(counter.chunks > 10)
    }

    @Test func timeoutsAndRefusedConnectionsAreTold() async throws {
        await #expect {
            try await client.send(HTTPRequest(url: server.url("/slow?s=3"), timeout: 0.5))
        } throws: { ($0 as? HTTPError)?.kind == .timeout }
        await #expect {
            try await client.send(HTTPRequest(url: "http://127.0.0.1:\(freePort())/"))
        } throws: { ($0 as? HTTPError)?.kind == .connect }
        await #expect {
            try await client.send(HTTPRequest(url: "notaurl"))
        } throws: { [.request, .connect].contains(($0 as? HTTPError)?.kind) }
    }

    @Test func tlsIsVerifiedAgainstTheCAItIsGiven() async throws {
        let folder = TemporaryDirectory("pipeline-tls")
        let tls = try TestCertificates(in: folder)
        let secure = try TestServer(tls: (tls.certificate, tls.key))
        let url = secure.url("/echo", scheme: "https", host: "localhost")
        await #expect {
            try await HTTPClient(caFile: nil).send(HTTPRequest(url: url))
        } throws: { ($0 as? HTTPError)?.kind == .tls }
        let trusted = HTTPClient(caFile: tls.ca)
        #expect(try await trusted.send(HTTPRequest(url: url)).status == 200)
    }
}

/// What logs and messages show of a URL never carries its password, token or query values.
@Suite struct URLTextTests {
    @Test func credentialsAndQueryValuesAreRedacted() {
        #expect(URLText.redacted("https://x-access-token:ghp_abc@github.com/team/app.git") == "https://***@github.com/team/app.git")
        #expect(URLText.redacted("https://github.com/team/a@b.git") == "https://github.com/team/a@b.git")
        #expect(URLText.redacted("git@github.com:team/app.git") == "git@github.com:team/app.git")
        #expect(URLText.redacted("http://u:EPSECRET@127.0.0.1:4566") == "http://***@127.0.0.1:4566")
        #expect(URLText.redacted("https://h/repo.git?auth=QUERYSECRET&x") == "https://h/repo.git?auth=***&x")
    }
}
