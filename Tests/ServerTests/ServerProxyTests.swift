import AWS
import Foundation
import HTTP
import Runner
import Testing
import TestSupport

/// `pipeline serve` behind a reverse proxy: the README's nginx example run as shipped (TLS, live logs unbuffered,
/// Secure cookies), X-Forwarded-For read from trusted proxies only, and an SSO proxy's identity header.
@Suite(.serialized) struct ServerProxyTests {
    @Test func theNginxExampleServesThePagesOverTLS() async throws {
        let certificateFolder = TemporaryDirectory("pipeline-serve-tls")
        let certificates = try await onOwnThread { try TestCertificates(in: certificateFolder) }
        let https = freePort(), http = freePort()
        let served = try await ServedPipeline(arguments: ["--url", "https://localhost:\(https)", "--trusted-proxy", "127.0.0.1"])
        let upstream = try #require(served.url.split(separator: ":").last.map(String.init))

        // The example as shipped, with only the site's names put in.
        let example = try String(contentsOf: Project.root.appending(path: "docs/serve/nginx.conf"), encoding: .utf8)
        let site = example
            .replacingOccurrences(of: "deploy.example.com;", with: "localhost;")
            .replacingOccurrences(of: "listen 443 ssl;", with: "listen 127.0.0.1:\(https) ssl;")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(http);")
            .replacingOccurrences(of: "/etc/ssl/certs/deploy.example.com.pem", with: certificates.certificate)
            .replacingOccurrences(of: "/etc/ssl/private/deploy.example.com.key", with: certificates.key)
            .replacingOccurrences(of: "server 127.0.0.1:8080;", with: "server 127.0.0.1:\(upstream);")
        let directives = site.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }.joined(separator: "\n")
        #expect(site != example && !directives.contains("8080") && !directives.contains("example.com"), "\(directives)")
        let folder = TemporaryDirectory("pipeline-serve-nginx")
        let siteFile = folder.write("pipeline.conf", site)
        let main = folder.write(
            "nginx.conf",
            """
            worker_processes 1; daemon off; pid \(folder.url.path)/nginx.pid; error_log \(folder.url.path)/error.log;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(folder.url.path); proxy_temp_path \(folder.url.path); fastcgi_temp_path \(folder.url.path);
                uwsgi_temp_path \(folder.url.path); scgi_temp_path \(folder.url.path);
                include \(siteFile.path);
            }
            """)
        let nginx = try ServerProcess("/usr/sbin/nginx", ["-c", main.path, "-p", folder.url.path])
        #expect(await onOwnThread { waitForPort(https) }, "nginx did not start: \((try? String(contentsOf: folder.url.appending(path: "error.log"), encoding: .utf8)) ?? "")")

        let client = HTTPClient(caFile: certificates.ca)
        let base = "https://localhost:\(https)"
        let signIn = try await client.send(
            HTTPRequest(
                method: "POST", url: base + "/signin", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: .bytes(Array("user=dave&password=correct+horse+battery".utf8))))
        #expect(signIn.status == 303, "\(signIn.status) \(signIn.text)")
        let cookie = try #require(signIn.header("set-cookie"))
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict"] { #expect(cookie.contains(attribute), "\(cookie)") }
        let session = String(cookie.split(separator: ";")[0])
        let page = try await client.send(HTTPRequest(url: base + "/environments", headers: [("Cookie", session)]))
        let csrf = try #require(page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression).map { String(page.text[$0].split(separator: "\"")[3]) })

        // A form from the public origin is accepted; one from another site is not.
        func start(origin: String) async throws -> HTTPResponse {
            try await client.send(
                HTTPRequest(
                    method: "POST", url: base + "/runs",
                    headers: [("Cookie", session), ("Origin", origin), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: .bytes(Array("environment=staging&csrf=\(csrf)".utf8))))
        }
        #expect(try await start(origin: "https://evil.example").status == 403)
        let started = try await start(origin: base)
        #expect(started.status == 303 && started.header("location") == "/runs/1", "\(started.status) \(started.text)")

        // Live log events come through the proxy whole.
        let events = try await client.send(HTTPRequest(url: base + "/api/v1/runs/1/stages/build/log", headers: [("Cookie", session)], timeout: 60))
        #expect(events.text.contains("out line 10") && events.text.hasSuffix("event: end\ndata: succeeded\n\n"), "\(events.text)")
        // Plain http is sent to https.
        let plain = try await HTTPClient().send(HTTPRequest(url: "http://127.0.0.1:\(http)/environments"))
        #expect(plain.status == 301 && plain.header("location")?.hasPrefix("https://") == true)
        _ = (nginx, certificateFolder)
    }

    @Test func forwardedForCountsOnlyFromTrustedProxies() async throws {
        // Trusted: the address the proxy appended is the client's, for the audit.
        let trusting = try await ServedPipeline(arguments: ["--trusted-proxy", "127.0.0.1"])
        _ = try await Browser(trusting.url).post("/signin", ["user": "dave", "password": "wrong password"], headers: [("X-Forwarded-For", "198.51.100.7, 203.0.113.9")])
        #expect(try trusting.store.auditEntries().last?.address == "203.0.113.9")
        // Not trusted: the header is ignored.
        let plain = try await ServedPipeline()
        _ = try await Browser(plain.url).post("/signin", ["user": "dave", "password": "wrong password"], headers: [("X-Forwarded-For", "203.0.113.9")])
        #expect(try plain.store.auditEntries().last?.address == "127.0.0.1")
    }

    @Test func anSSOProxysHeaderIsTrustedFromItsAddressOnly() async throws {
        let behind = try await ServedPipeline(arguments: ["--identity-header", "X-Forwarded-User", "--trusted-proxy", "127.0.0.1"])
        let viaProxy = Browser(behind.url)
        let page = try await viaProxy.get("/environments", headers: [("X-Forwarded-User", "dave")])
        #expect(page.status == 200 && page.text.contains("dave · deployer"), "\(page.status)")
        let unknown = try await viaProxy.get("/environments", headers: [("X-Forwarded-User", "mallory")])
        #expect(unknown.status == 403 && unknown.text.contains("not a user of this server"))
        // A change through the proxy needs the page's CSRF token too (the header is as ambient as a cookie).
        let csrf = try #require(page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression).map { String(page.text[$0].split(separator: "\"")[3]) })
        let forged = try await viaProxy.post("/runs", ["environment": "staging"], headers: [("X-Forwarded-User", "dave")])
        #expect(forged.status == 403)
        let started = try await viaProxy.post("/runs", ["environment": "staging", "csrf": csrf], headers: [("X-Forwarded-User", "dave")])
        #expect(started.status == 303, "\(started.text)")
        #expect(try behind.store.auditEntries().contains { $0.action == "run.started" && $0.actor == "dave" && $0.identity == .proxy })

        // The same header from an address that is not the proxy's is refused, not believed.
        let elsewhere = try await ServedPipeline(arguments: ["--identity-header", "X-Forwarded-User", "--trusted-proxy", "10.9.9.9"])
        let spoofed = try await Browser(elsewhere.url).get("/api/v1/runs", headers: [("X-Forwarded-User", "alice")])
        #expect(spoofed.status == 403 && spoofed.text.contains("accepted from the configured proxies only"), "\(spoofed.text)")
    }
}
