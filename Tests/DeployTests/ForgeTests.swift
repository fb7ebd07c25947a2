import AWS
import Foundation
import Hashing
import HTTP
import Runner
import Testing
import TestSupport

/// Commits in and statuses out, end to end: signed push deliveries from the GitHub stand-in (runner/dev/github-server,
/// which checks every request against GitHub's REST description through githubkit's models) reach `pipeline serve`,
/// which deploys the pushed commit to the local AWS stand-ins; the server then reports the run back as commit
/// statuses and a deployment with deployment statuses. GitLab and Gitea pushes start runs the same way.
@Suite(.serialized) struct ForgeTests {
    static let aws = LocalAWS.dedicated()
    static let token = "ghp_forge-test-token-9f8e7d"
    static let secret = "webhook-secret-1b2c3d"

    /// The GitHub stand-in's control and inspection endpoints.
    struct GitHub {
        let base: String
        let client = HTTPClient()

        func call(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any {
            let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
            let response = try await client.send(HTTPRequest(
                method: method, url: base + path, headers: body == nil ? [] : [("Content-Type", "application/json")],
                body: data.map { .bytes(Array($0)) } ?? .none, timeout: 30))
            return try JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])
        }

        /// Delivers a push of `after` to `url`; returns the server's status and answer.
        func push(_ url: String, after: String, ref: String = "refs/heads/main", sign: String = "good", repository: String = "acme/platform", delivery: String? = nil) async throws -> (Int, String, String) {
            var body: [String: Any] = [
                "url": url, "event": "push", "secret": ForgeTests.secret, "sign": sign, "repository": repository, "ref": ref,
                "before": String(repeating: "0", count: 40), "after": after,
                "commits": [["id": after, "message": "a change", "author_name": "Dev", "author_email": "dev@example.com", "timestamp": "2026-12-03T08:00:00Z"]],
            ]
            if let delivery { body["delivery"] = delivery }
            let answer = try await call("POST", "/_stand-in/deliver", body) as? [String: Any] ?? [:]
            return (answer["status"] as? Int ?? 0, answer["body"] as? String ?? "", answer["delivery"] as? String ?? "")
        }

        func statuses(_ sha: String) async throws -> [[String: Any]] {
            try await call("GET", "/_stand-in/statuses?sha=\(sha)") as? [[String: Any]] ?? []
        }

        func deployments(_ sha: String) async throws -> [[String: Any]] {
            try await call("GET", "/_stand-in/deployments?sha=\(sha)") as? [[String: Any]] ?? []
        }

        func violations() async throws -> [String] { try await call("GET", "/_stand-in/violations") as? [String] ?? [] }
    }

    @Test func aSignedPushDeploysAndTheCommitShowsHowItWent() async throws {
        let stand = ServerProcess.script("github-server", ["--repository", "acme/platform", "--token", Self.token])
        let github = GitHub(base: "http://127.0.0.1:\(try stand.port())")
        let project = try DeployProject(
            service: "api-service", ecsService: "api-service-staging", repository: "sv-core-api", port: 5003, grpc: false, aws: Self.aws)
        project.extraItems = """
            GitHub("acme/platform", webhookSecret: .environment("FORGE_WEBHOOK_SECRET"), token: .environment("FORGE_GITHUB_TOKEN"), api: "\(github.base)/api/v3")
                GitLab("acme/platform", webhookToken: .environment("FORGE_WEBHOOK_SECRET"))
                Gitea("acme/platform", webhookSecret: .secretsManager("forge/gitea", key: "webhook"))
                Shell("peek", "test -z \\"$FORGE_GITHUB_TOKEN$FORGE_WEBHOOK_SECRET\\" || { echo the forge secrets reached a stage; exit 1; }")
            """
        // Gitea's secret lives in Secrets Manager (moto), as JSON with the secret under a key.
        struct CreateSecret: Encodable { let Name: String; let SecretString: String }
        struct Created: Decodable { let ARN: String }
        _ = try await AWSClient(configuration: try AWSConfiguration.resolve(environment: Self.aws)).json(
            .secretsManager, targetPrefix: SecretsManager.targetPrefix, operation: "CreateSecret",
            input: CreateSecret(Name: "forge/gitea", SecretString: #"{"webhook": "\#(Self.secret)"}"#), as: Created.self)
        let a = try project.commit("A", looks: 30)  // a rollout of 3 s: long enough to be seen pending
        let environment = project.environment.merging([
            "PIPELINE_PIPELINES": project.repo.appending(path: "pipelines").path,
            "FORGE_WEBHOOK_SECRET": Self.secret, "FORGE_GITHUB_TOKEN": Self.token,
        ]) { _, new in new }
        let (server, url) = try await Self.serve(environment)
        let hook = url + "/hooks/github"
        let store = try StateStore(home: project.home.url)

        // GitHub's first rate-limit answer is waited out (secondary: retry-after 1 s), not dropped.
        _ = try await github.call("POST", "/_stand-in/rate-limit", ["count": 1, "kind": "secondary", "seconds": 1])
        let ping = try await github.call("POST", "/_stand-in/deliver", ["url": hook, "event": "ping", "secret": Self.secret]) as? [String: Any]
        #expect(ping?["status"] as? Int == 200, "\(String(describing: ping))")

        // A signed push of A to main (staging's branch) deploys it.
        let (status, answer, delivery) = try await github.push(hook, after: a)
        #expect(status == 202, "\(answer)")
        #expect(answer.contains("starting staging"), "\(answer)")
        let first = try await Self.waitFor(store, run: 1, [.succeeded, .failed, .rolledBack])
        #expect(first.status == .succeeded && first.trigger == "webhook" && first.sha == a, "\(first)")
        #expect(first.user == "github:Dev" || first.user.hasPrefix("github:"), "\(first.user)")
        let statuses = try await Self.eventually { try await github.statuses(a).contains { $0["state"] as? String == "success" } ? try await github.statuses(a) : nil }
        // Oldest first, as the stand-in keeps them: pending, then success, with the run's page as target.
        #expect(statuses.compactMap { $0["state"] as? String } == ["pending", "success"], "\(statuses)")
        #expect(statuses.last?["context"] as? String == "pipeline/staging", "\(statuses)")
        #expect((statuses.last?["target_url"] as? String) == "https://deploy.example.com/runs/1", "\(statuses)")
        let deployments = try await Self.eventually {
            let found = try await github.deployments(a)
            return (found.first?["statuses"] as? [[String: Any]])?.contains { $0["state"] as? String == "success" } == true ? found : nil
        }
        #expect(deployments.count == 1 && deployments.first?["environment"] as? String == "staging", "\(deployments)")
        let states = (deployments.first?["statuses"] as? [[String: Any]] ?? []).compactMap { $0["state"] as? String }
        #expect(states.contains("in_progress") && states.last == "success", "\(states)")
        #expect((deployments.first?["statuses"] as? [[String: Any]])?.last?["log_url"] as? String == "https://deploy.example.com/runs/1")

        // The same delivery again (GitHub's "redeliver"), a wrong or missing signature, and another repository's
        // push: each is answered, and none starts a run.
        let again = try await github.push(hook, after: a, delivery: delivery)
        #expect(again.0 == 200 && again.1.contains("received before"), "\(again)")
        let b = try project.commit("B", health: "failing")
        let wrong = try await github.push(hook, after: b, sign: "wrong")
        #expect(wrong.0 == 401, "\(wrong)")
        let unsigned = try await github.push(hook, after: b, sign: "none")
        #expect(unsigned.0 == 401, "\(unsigned)")
        let foreign = try await github.push(hook, after: b, repository: "acme/other")
        #expect(foreign.0 == 422 && foreign.1.contains("not this pipeline's"), "\(foreign)")
        let tag = try await github.push(hook, after: b, ref: "refs/tags/v1")
        #expect(tag.0 == 202 && tag.1.contains("tags start nothing"), "\(tag)")
        // GitHub's default content type: the JSON in a form's `payload` field, signed as sent.
        let form = "payload=" + #"{"ref":"refs/heads/main","after":"\#(a)","repository":{"full_name":"acme/platform"},"pusher":{"name":"Dev"}}"#
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let signature = "sha256=" + HMACSHA256.authenticate(Array(form.utf8), key: Array(Self.secret.utf8)).hexString
        let formAnswer = try await HTTPClient().send(HTTPRequest(
            method: "POST", url: hook,
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", UUID().uuidString),
                      ("X-Hub-Signature-256", signature)],
            body: .bytes(Array(form.utf8))))
        #expect(formAnswer.status == 200 && formAnswer.text.contains("run 1 already deploys"), "\(formAnswer.status) \(formAnswer.text)")

        // Delivery ids are compared whole, however long (two that share their first 200 characters are two).
        let long = String(repeating: "d", count: 300)
        let longOne = try await github.push(hook, after: a, delivery: long + "1")
        let longTwo = try await github.push(hook, after: a, delivery: long + "2")
        #expect(!longOne.1.contains("received before") && !longTwo.1.contains("received before"), "\(longOne) \(longTwo)")

        // A commit the repository does not have: answered (its run is starting), then the run's process refuses it;
        // the server says so, and forgets the delivery so that GitHub's redelivery can try again.
        let unknown = String(repeating: "7", count: 40)
        let missing = try await github.push(hook, after: unknown)
        #expect(missing.0 == 202, "\(missing)")
        let failedStart = try await Self.eventually { try store.auditEntries().first { $0.action == "run start failed" } }
        #expect(failedStart.detail?.contains(String(unknown.prefix(12))) == true, "\(failedStart)")
        let retried = try await github.push(hook, after: unknown, delivery: missing.2)
        #expect(retried.0 == 202 && !retried.1.contains("received before"), "\(retried)")
        _ = try await Self.eventually { try store.auditEntries().filter { $0.action == "run start failed" }.count == 2 ? true : nil }
        try await Task.sleep(for: .seconds(1))
        #expect(try store.runs(limit: 10).count == 1)

        // B fails its health check and is rolled back: the commit shows failure, saying so (after a primary rate
        // limit, x-ratelimit-reset 2 s on, is waited out: a request before then would be a violation).
        _ = try await github.call("POST", "/_stand-in/rate-limit", ["count": 1, "kind": "primary", "seconds": 2])
        let pushedB = try await github.push(hook, after: b)
        #expect(pushedB.0 == 202, "\(pushedB)")
        let second = try await Self.waitFor(store, run: 2, [.succeeded, .failed, .rolledBack])
        #expect(second.status == .rolledBack, "\(second)")
        let failed = try await Self.eventually { try await github.statuses(b).first { $0["state"] as? String == "failure" } }
        #expect((failed["description"] as? String) == "rolled back api-service after api-service.health failed", "\(failed)")
        let deploymentB = try await Self.eventually {
            try await github.deployments(b).first { ($0["statuses"] as? [[String: Any]] ?? []).contains { $0["state"] as? String == "failure" } }
        }
        #expect(deploymentB["sha"] as? String == b)

        // GitLab and Gitea pushes (their own signatures) start runs the same way.
        let c = try project.commit("C")
        let gitlab = try await github.call("POST", "/_stand-in/deliver-gitlab", [
            "url": url + "/hooks/gitlab", "token": Self.secret, "ref": "refs/heads/main", "before": b, "after": c, "repository": "acme/platform",
        ]) as? [String: Any]
        #expect(gitlab?["status"] as? Int == 202, "\(String(describing: gitlab))")
        #expect(try await Self.waitFor(store, run: 3, [.succeeded, .failed, .rolledBack]).status == .succeeded)
        let badGitlab = try await github.call("POST", "/_stand-in/deliver-gitlab", [
            "url": url + "/hooks/gitlab", "token": "not-the-token", "ref": "refs/heads/main", "before": c, "after": b, "repository": "acme/platform",
        ]) as? [String: Any]
        #expect(badGitlab?["status"] as? Int == 401)
        let d = try project.commit("D")
        let gitea = try await github.call("POST", "/_stand-in/deliver-gitea", [
            "url": url + "/hooks/gitea", "secret": Self.secret, "ref": "refs/heads/main", "before": c, "after": d, "repository": "acme/platform",
        ]) as? [String: Any]
        #expect(gitea?["status"] as? Int == 202, "\(String(describing: gitea))")
        #expect(try await Self.waitFor(store, run: 4, [.succeeded, .failed, .rolledBack]).status == .succeeded)
        let badGitea = try await github.call("POST", "/_stand-in/deliver-gitea", [
            "url": url + "/hooks/gitea", "secret": "another", "ref": "refs/heads/main", "before": d, "after": c, "repository": "acme/platform",
        ]) as? [String: Any]
        #expect(badGitea?["status"] as? Int == 401)
        #expect(try store.runs(limit: 10).count == 4)

        // The metrics count the deploys, the automatic rollback, and the stages' AWS requests by operation.
        _ = try store.addUser("ops", role: .viewer, password: "correct horse battery")
        let token = try await runProcess(Project.executable, ["tokens", "create", "--user", "ops"], environment: environment).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let metrics = try await HTTPClient().send(HTTPRequest(url: url + "/metrics", headers: [("Authorization", "Bearer \(token)")])).text
        for line in [
            #"pipeline_deployments_total{environment="staging",kind="deploy",service="api-service"} 3"#,
            #"pipeline_rollbacks_total{environment="staging",kind="automatic",service="api-service"} 1"#,
            #"pipeline_runs_total{environment="staging",status="rolled-back",trigger="webhook"} 1"#,
            #"pipeline_aws_requests_total{operation="UpdateService",outcome="success",service="ecs"}"#,
            #"pipeline_aws_request_duration_seconds_count{operation="RegisterTaskDefinition",service="ecs"}"#,
        ] {
            #expect(metrics.contains(line), "\(line)\n\(metrics)")
        }

        // Every request the server sent was one GitHub's REST description allows; the token never reached a log.
        #expect(try await github.violations() == [])
        let audit = try store.auditEntries()
        #expect(audit.filter { $0.action == "run started" && $0.actor == "github-webhook" }.map(\.target) == ["run 1", "run 2"], "\(audit)")
        let logs = try FileManager.default.subpathsOfDirectory(atPath: project.home.url.path).filter { $0.hasSuffix(".log") }
        for log in logs {
            let text = (try? String(contentsOf: project.home.url.appending(path: log), encoding: .utf8)) ?? ""
            #expect(!text.contains(Self.token) && !text.contains(Self.secret), "\(log)")
        }
        withExtendedLifetime((server, stand)) {}
    }

    /// `pipeline serve` over `environment`, with its URL.
    static func serve(_ environment: [String: String]) async throws -> (ServerProcess, String) {
        try await onOwnThread {
            try ServerProcess.printingURL(
                Project.executable.path, ["serve", "--listen", "127.0.0.1:0", "--url", "https://deploy.example.com"], environment: environment)
        }
    }

    static func waitFor(_ store: StateStore, run id: Int, _ statuses: Set<RunStatus>) async throws -> RunRecord {
        for _ in 0..<1800 {
            if let run = try store.run(id), statuses.contains(run.shownStatus) { return run }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ForgeTestError(description: "run \(id) never reached \(statuses): \(String(describing: try store.run(id)))")
    }

    /// Asks `probe` until it finds something (up to 60 s).
    static func eventually<T>(_ probe: () async throws -> T?) async throws -> T {
        for _ in 0..<600 {
            if let found = try await probe() { return found }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ForgeTestError(description: "what the test waited for never came")
    }
}

struct ForgeTestError: Error, CustomStringConvertible { let description: String }
