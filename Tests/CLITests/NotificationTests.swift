import Foundation
import Testing
import TestSupport

/// Run-level notifications and the notify stage, received by a local HTTP server.
@Suite struct NotificationTests {
    /// A receiver that appends every POST body (one per line) to FILE and answers 200, or 500 on /fail.
    static let receiver = """
        import http.server, sys
        path = sys.argv[1]
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers['Content-Length']))
                with open(path, 'ab') as f: f.write(self.path.encode() + b' ' + body + b'\\n')
                self.send_response(500 if self.path == '/fail' else 200); self.send_header('Content-Length', '0'); self.end_headers()
            def log_message(self, *a): pass
        s = http.server.HTTPServer(('127.0.0.1', 0), H); print(s.server_address[1], flush=True); s.serve_forever()
        """

    func project(_ folder: TemporaryDirectory) {
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("notify") {
                Environment("prod", branch: "main", region: "us-east-1", cluster: "c")
                Notifications(webhook: .environment("TEAM_HOOK"), format: .json, on: [.started, .waitingForApproval, .succeeded, .failed])
                Notifications(webhook: .environment("BROKEN_HOOK"), on: [.succeeded])
                Notify("announce", webhook: .environment("CHAT_HOOK"), message: "deploying {env} at {sha} (run {run}, by {user})")
                Approval("release", approvers: ["alice"], identityVariable: "TEST_USER")
                Shell("after", "echo done")
            }
            """)
    }

    @Test func eventsAndTheNotifyStageArePostedAndAFailingHookChangesNothing() throws {
        let folder = TemporaryDirectory()
        project(folder)
        let received = folder.url.appending(path: "received")
        let receiverFile = folder.write("receiver.py", Self.receiver)
        let server = ServerProcess.python("import runpy, sys; sys.argv = ['r', '\(received.path)']; runpy.run_path('\(receiverFile.path)', run_name='__main__')")
        let port = try server.port()
        let environment = [
            "PIPELINE_HOME": folder.url.appending(path: "home").path, "PIPELINE_CACHE_DIR": RunFixture.cache.url.path,
            "TEAM_HOOK": "http://127.0.0.1:\(port)/team-secret-path", "CHAT_HOOK": "http://127.0.0.1:\(port)/chat-secret-path",
            "BROKEN_HOOK": "http://127.0.0.1:\(port)/fail", "TEST_USER": "carol",
            "PIPELINE_SERVER_URL": "https://deploy.example.com/",
        ]
        let started = try runProcess(Project.executable, ["run", "prod"], in: folder.url, environment: environment)
        #expect(started.status == 4, "\(started.stdout)\(started.stderr)")
        let approved = try runProcess(
            Project.executable, ["approve", "prod"], in: folder.url, environment: environment.merging(["TEST_USER": "alice"]) { _, new in new })
        #expect(approved.status == 0, "\(approved.stdout)\(approved.stderr)")
        #expect(approved.stdout.contains("warning: the succeeded notification was not delivered: the webhook answered HTTP 500"), "\(approved.stdout)")

        let lines = try String(contentsOf: received, encoding: .utf8).split(separator: "\n").map(String.init)
        let team = lines.filter { $0.hasPrefix("/team-secret-path ") }
        let events = team.compactMap { line -> String? in
            let json = try? JSONSerialization.jsonObject(with: Data(line.dropFirst("/team-secret-path ".count).utf8)) as? [String: String]
            return json?["event"]
        }
        #expect(events == ["started", "waitingForApproval", "started", "succeeded"], "\(lines)")
        // With the team's server known, each message links to the run's page, and the wait to its approval page.
        let waiting = team.compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.dropFirst("/team-secret-path ".count).utf8)) as? [String: String]
        }.first { $0["event"] == "waitingForApproval" }
        #expect(waiting?["url"] == "https://deploy.example.com/runs/1" && waiting?["approval_url"] == "https://deploy.example.com/runs/1/approval", "\(lines)")
        #expect(waiting?["text"]?.contains("approve at https://deploy.example.com/runs/1/approval") == true, "\(lines)")
        #expect(team.allSatisfy { $0.contains("\"environment\":\"prod\"") && $0.contains("pipeline status 1") })
        let chat = lines.filter { $0.hasPrefix("/chat-secret-path ") }
        #expect(chat.count == 1 && chat[0].contains("\"text\":\"deploying prod at no commit (run 1, by "), "\(chat)")
        #expect(lines.contains { $0.hasPrefix("/fail ") })

        // The URLs are secrets: nowhere in the run's files.
        let home = folder.url.appending(path: "home")
        for file in FileManager.default.enumerator(atPath: home.path)!.compactMap({ $0 as? String }) {
            guard let data = FileManager.default.contents(atPath: home.appending(path: file).path) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            #expect(!text.contains("secret-path"), "\(file)")
        }
        let log = try String(contentsOf: home.appending(path: "runs/1/notifications.log"), encoding: .utf8)
        #expect(log.contains("succeeded → webhook 2 (BROKEN_HOOK): the webhook answered HTTP 500"), "\(log)")
        withExtendedLifetime(server) {}
    }
}
