import AWS
import Foundation
import Runner
import Testing
import TestSupport

/// The server over a real deploy of the reference platform to this test's own stand-ins: staging runs started from
/// the page, what is live per environment, the approval page's commits in between, and a rollback confirmed on its
/// page and carried out (checked in moto), with gated environments needing an approver or an admin.
@Suite struct ServerDeployTests {
    @Test func deployApproveAndRollBackFromThePages() async throws {
        let aws = LocalAWS.dedicated()
        let folder = TemporaryDirectory("pipeline-serve-e2e")
        let app = folder.url.appending(path: "app")
        let made = try await onOwnThread { try runProcess(Project.root.appending(path: "runner/dev/example-app"), [app.path]) }
        #expect(made.status == 0, "\(made.stderr)")
        func git(_ arguments: String...) throws -> String {
            let result = try runProcess(URL(filePath: "/usr/bin/git"), ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + arguments, in: app)
            #expect(result.status == 0, "git \(arguments): \(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func commit(_ message: String, version: String) throws -> String {
            try "user-service \(version)\n".write(to: app.appending(path: "services/user-service/version.txt"), atomically: true, encoding: .utf8)
            _ = try git("commit", "-qam", message)
            return try git("rev-parse", "HEAD")
        }
        let home = folder.url.appending(path: "home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let store = try StateStore(home: home)
        for (name, role) in [("alice", Role.admin), ("dave", .deployer), ("erin", .deployer), ("bob", .viewer)] {
            _ = try store.addUser(name, role: role, password: ServedPipeline.password)
        }
        let environment = aws.merging(["PIPELINE_HOME": home.path, "PIPELINE_PIPELINES": app.appending(path: "pipelines").path]) { _, new in new }
        let (server, printed) = try await onOwnThread {
            let output = Pipe()
            let server = try ServerProcess(Project.executable.path, ["serve", "--listen", "127.0.0.1:0", "--ecs-check-interval", "0"], environment: environment, stdout: output)
            var printed = ""
            while !printed.contains("\n") {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                printed += String(decoding: data, as: UTF8.self)
            }
            return (server, printed)
        }
        let url = try #require(printed.range(of: "http://127.0.0.1:[0-9]+", options: .regularExpression).map { String(printed[$0]) }, "\(printed)")
        func waitFor(_ id: Int, _ statuses: Set<RunStatus>) async throws -> RunRecord {
            for _ in 0..<3000 {
                if let run = try store.run(id), statuses.contains(run.shownStatus) { return run }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw ServedError(description: "run \(id) never reached \(statuses)")
        }

        let dave = Browser(url)
        let csrf = try await dave.signIn("dave")
        let a = try commit("user-service A <b>bold</b>", version: "A")
        _ = try await dave.post("/runs", ["environment": "staging", "csrf": csrf])
        #expect(try await waitFor(1, [.succeeded, .failed, .rolledBack]).shownStatus == .succeeded)
        let b = try commit("user-service B", version: "B")
        _ = try await dave.post("/runs", ["environment": "staging", "csrf": csrf])
        #expect(try await waitFor(2, [.succeeded, .failed, .rolledBack]).shownStatus == .succeeded)

        // What is live, per environment and service.
        let environments = try #require(try await dave.get("/api/v1/environments").json() as? [[String: Any]])
        let staging = try #require(environments.first { $0["name"] as? String == "staging" })
        let live = try #require((staging["live"] as? [[String: Any]])?.first { $0["service"] as? String == "user-service" })
        #expect(live["sha"] as? String == b && live["startedBy"] as? String == "dave" && live["run"] as? Int == 2, "\(live)")
        let page = try await dave.get("/environments").text
        #expect(page.contains(String(b.prefix(12))) && page.contains("/services/user-service"))

        // prod from main: the approval page lists the commits between what prod runs (nothing yet) and B.
        _ = try git("branch", "-f", "main", b)
        _ = try await dave.post("/runs", ["environment": "prod", "csrf": csrf])
        _ = try await waitFor(3, [.waiting])
        let alice = Browser(url)
        let aliceCSRF = try await alice.signIn("alice")
        let approval = try await alice.get("/runs/3/approval").text
        #expect(approval.contains("user-service A &lt;b&gt;bold&lt;/b&gt;") && approval.contains("user-service B"), "\(approval)")
        let gate = try #require(try await alice.get("/api/v1/runs/3/approval").json() as? [String: Any])
        let release = try #require((gate["services"] as? [[String: Any]])?.first { $0["service"] as? String == "user-service" })
        #expect((release["commits"] as? [[String: Any]])?.first?["sha"] as? String == b)
        _ = try await alice.post("/runs/3/approve", ["csrf": aliceCSRF])
        #expect(try await waitFor(3, [.succeeded, .failed, .rolledBack]).shownStatus == .succeeded)
        #expect(try store.deployments(service: "user-service", environment: "prod", limit: 1).first?.approvedBy == "alice")

        // The service page offers A; the confirmation says exactly what changes; the rollback runs.
        let service = try await dave.get("/services/user-service").text
        #expect(service.contains("/services/user-service/rollback?env=staging&amp;to=\(a)"), "\(service)")
        let confirm = try await dave.get("/services/user-service/rollback?env=staging&to=\(a)")
        #expect(confirm.status == 200 && confirm.text.contains("rollback user-service in staging") && confirm.text.contains("to    \(a.prefix(12))"), "\(confirm.text)")
        let preview = try #require(try await dave.get("/api/v1/services/user-service/rollback?env=staging&to=\(a)").json() as? [String: Any])
        #expect(preview["possible"] as? Bool == true && (preview["text"] as? String)?.contains("to    \(a.prefix(12))") == true, "\(preview)")
        #expect(try store.runs().count == 3)  // looking changed nothing
        // A deployer may not roll back gated prod; erin (a deployer) can roll back staging.
        let gated = try await dave.post("/services/user-service/rollback", ["csrf": csrf, "env": "prod", "to": "previous"])
        #expect(gated.status == 403 && gated.text.contains("prod is gated"), "\(gated.text)")
        let bob = Browser(url)
        let bobCSRF = try await bob.signIn("bob")
        #expect(try await bob.post("/services/user-service/rollback", ["csrf": bobCSRF, "env": "staging", "to": a]).status == 403)
        let rolled = try await dave.post("/services/user-service/rollback", ["csrf": csrf, "env": "staging", "to": a])
        #expect(rolled.status == 303 && rolled.header("location") == "/runs/4", "\(rolled.status) \(rolled.text)")
        let rollback = try await waitFor(4, [.succeeded, .failed, .rolledBack])
        #expect(rollback.shownStatus == .succeeded && rollback.trigger == "rollback" && rollback.user == "dave", "\(rollback)")
        let revisionA = try #require(try store.deployments(service: "user-service", environment: "staging").first { $0.sha == a && $0.kind == .deploy }?.taskDefinitionArn)
        let client = AWSClient(configuration: try AWSConfiguration.resolve(environment: aws))
        #expect(try await client.describeService(cluster: "staging-cluster", service: "user-service-staging").taskDefinition == revisionA)
        #expect(try store.auditEntries().contains { $0.action == "rolled-back" && $0.actor == "dave" && $0.target == "run 4" })

        // No drift while ECS runs what pipeline deployed; a change made behind its back shows.
        func drift() async throws -> [[String: Any]] {
            let all = try #require(try await dave.get("/api/v1/environments").json() as? [[String: Any]])
            return try #require(all.first { $0["name"] as? String == "staging" }?["drift"] as? [[String: Any]])
        }
        #expect(try await drift().isEmpty)
        let revisionB = try #require(try store.deployments(service: "user-service", environment: "staging").first { $0.sha == b }?.taskDefinitionArn)
        _ = try await client.updateService(cluster: "staging-cluster", service: "user-service-staging", taskDefinition: revisionB)
        let drifted = try await drift()
        #expect(drifted.count == 1 && drifted.first?["service"] as? String == "user-service" && drifted.first?["running"] as? String == revisionB, "\(drifted)")
        #expect(try await dave.get("/environments").text.contains("Drift: ECS runs user-service on"))
        _ = server
    }
}
