import AWS
import Foundation
import HTTP
import Runner
import Testing
import TestSupport

/// `pipeline serve` as a real process on a free port: sign-in, runs started and followed, approvals by signed-in
/// approvers, and the attacks a server must refuse.
@Suite(.serialized) struct ServerTests {
    @Test func signedOutRequestsGoToSignInOrAreRefused() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        let page = try await browser.get("/environments")
        #expect(page.status == 303 && page.header("location") == "/signin?next=%2Fenvironments", "\(page.status) \(page.headers)")
        let api = try await browser.get("/api/v1/runs")
        #expect(api.status == 401)
        #expect((try api.json() as? [String: Any])?["error"] as? String == "sign in first (a session, or `Authorization: Bearer TOKEN`)")
        let start = try await browser.send("POST", "/api/v1/runs", body: #"{"environment":"staging"}"#, type: "application/json")
        #expect(start.status == 401)
        let form = try await browser.post("/runs", ["environment": "staging"])
        #expect(form.status == 401)
        #expect(try served.store.runs().isEmpty)
        // Every answer carries the security headers.
        #expect(page.header("content-security-policy")?.contains("script-src 'self'") == true)
        #expect(page.header("x-frame-options") == "DENY")
    }

    @Test func aDeployerStartsARunFollowsItsLogAndDownloadsAnArtifact() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        let csrf = try await browser.signIn("dave")
        #expect(!csrf.isEmpty)
        #expect(browser.cookies["pipeline_session"] != nil)

        let started = try await browser.post("/runs", ["environment": "staging", "csrf": csrf])
        #expect(started.status == 303 && started.header("location") == "/runs/1", "\(started.status) \(started.text)")
        let run = try await served.waitFor(run: 1, [.succeeded, .failed])
        #expect(run.shownStatus == .succeeded && run.user == "dave" && run.trigger == "server", "\(run)")

        // The log as server-sent events: every line with its end's byte offset as id, then `end`.
        let events = try await browser.get("/api/v1/runs/1/stages/build/log")
        #expect(events.header("content-type") == "text/event-stream")
        let lines = events.text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        for expected in ["out line 1", "out line 5", "out <script>alert(1)</script>"] {
            #expect(lines.contains { $0.hasSuffix(expected) }, "\(expected): \(events.text)")
        }
        #expect(events.text.hasSuffix("event: end\ndata: succeeded\n\n"), "\(events.text)")
        // Resumed after the second line's id: the lines after it only.
        let ids = events.text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        let resumed = try await browser.get("/api/v1/runs/1/stages/build/log", headers: [("Last-Event-ID", ids[1])])
        let again = resumed.text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        #expect(Array(again.prefix(lines.count - 2)) == Array(lines.dropFirst(2)), "\(resumed.text)")

        // The run's JSON has every stage, the artifact, and the same shape as its page.
        let json = try #require(try await browser.get("/api/v1/runs/1").json() as? [String: Any])
        let stages = try #require(json["stages"] as? [[String: Any]])
        #expect(stages.map { $0["id"] as? String } == ["build", "after"])
        #expect(stages.first?["artifacts"] as? [String] == ["report.txt"])
        // The CLI's --json is the API's shape.
        let cli = try await served.pipeline("status", "1", "--json")
        let cliJSON = try #require(try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? NSDictionary)
        #expect(cliJSON == json as NSDictionary, "\(cli.stdout)")
        let history = try await served.pipeline("history", "--json")
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [NSDictionary])
        let apiList = try #require(try await browser.get("/api/v1/runs").json() as? [NSDictionary])
        #expect(listed == apiList)
        let artifact = try await browser.get("/runs/1/artifacts/build/report.txt")
        #expect(artifact.status == 200 && artifact.text == "kept\n")
        let page = try await browser.get("/runs/1")
        #expect(page.text.contains("data-log-src=\"/api/v1/runs/1/stages/build/log\""))

        // The audit says who did what, as which kind of identity.
        let audit = try await browser.get("/api/v1/audit?format=jsonl")
        let entries = audit.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(entries.contains { $0["action"] as? String == "sign-in" && $0["actor"] as? String == "dave" && $0["identity"] as? String == "server-user" })
        #expect(entries.contains { $0["action"] as? String == "run.started" && $0["target"] as? String == "run 1" && $0["actor"] as? String == "dave" })
    }

    @Test func pagesEscapeWhatTheyShow() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        let csrf = try await browser.signIn("dave")
        _ = try await browser.post("/runs", ["environment": "broken", "csrf": csrf])
        let run = try await served.waitFor(run: 1, [.succeeded, .failed])
        #expect(run.shownStatus == .failed)
        let page = try await browser.get("/runs/1").text
        #expect(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"), "\(page)")
        #expect(!page.contains("<script>alert"))
        // What the audit keeps is shown escaped too (a token's name here).
        _ = try await served.pipeline("tokens", "create", "--user", "dave", "--name", "<img src=x onerror=alert(3)>")
        let audit = try await browser.get("/audit").text
        #expect(audit.contains("&lt;img src=x onerror=alert(3)&gt;") && !audit.contains("<img src=x"), "\(audit)")
    }

    @Test func forgedUnauthorisedAndMalformedRequestsChangeNothing() async throws {
        let served = try await ServedPipeline()
        let viewer = Browser(served.url)
        let viewerCSRF = try await viewer.signIn("carol")
        let refused = try await viewer.post("/runs", ["environment": "staging", "csrf": viewerCSRF])
        #expect(refused.status == 403 && refused.text.contains("carol is a viewer; this needs a deployer"), "\(refused.text)")
        #expect(!(try await viewer.get("/environments").text.contains("Run staging")))

        let deployer = Browser(served.url)
        let csrf = try await deployer.signIn("dave")
        let forged = try await deployer.post("/runs", ["environment": "staging"])
        #expect(forged.status == 403 && forged.text.contains("CSRF"), "\(forged.text)")
        let wrong = try await deployer.post("/runs", ["environment": "staging", "csrf": csrf + "x"])
        #expect(wrong.status == 403)
        let crossSite = try await deployer.post("/runs", ["environment": "staging", "csrf": csrf], headers: [("Origin", "https://evil.example")])
        #expect(crossSite.status == 403)
        let unknown = try await deployer.send("POST", "/api/v1/runs", body: #"{"environment":"nowhere"}"#, type: "application/json", headers: [("X-CSRF-Token", csrf)])
        #expect(unknown.status == 400 && unknown.text.contains("there is no environment 'nowhere'"), "\(unknown.text)")
        let malformed = try await deployer.send("POST", "/api/v1/runs", body: #"{"environment": "#, type: "application/json", headers: [("X-CSRF-Token", csrf)])
        #expect(malformed.status == 400 && malformed.text.contains("not valid JSON"), "\(malformed.text)")
        let badSha = try await deployer.send("POST", "/api/v1/runs", body: #"{"environment":"staging","sha":"zz;rm"}"#, type: "application/json", headers: [("X-CSRF-Token", csrf)])
        #expect(badSha.status == 400 && badSha.text.contains("field 'sha'"), "\(badSha.text)")
        let huge = try await deployer.send("POST", "/api/v1/runs", body: String(repeating: "x", count: 200_000), type: "application/json", headers: [("X-CSRF-Token", csrf)])
        #expect(huge.status == 413, "\(huge.status)")
        #expect(try served.store.runs().isEmpty)

        #expect(try await deployer.get("/runs/999").status == 404)
        #expect(try await deployer.get("/api/v1/runs/999").status == 404)
        #expect(try await deployer.get("/api/v1/runs/abc").status == 404)
        #expect(try await deployer.get("/runs?status=bogus").status == 400)

        // A revoked or made-up token is refused.
        let token = try await served.pipeline("tokens", "create", "--user", "dave").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let api = Browser(served.url)
        api.bearer = token
        #expect(try await api.get("/api/v1/runs").status == 200)
        #expect(try await served.pipeline("tokens", "revoke", "1").status == 0)
        #expect(try await api.get("/api/v1/runs").status == 401)
        api.bearer = "pl_madeup"
        #expect(try await api.get("/api/v1/runs").status == 401)
    }

    @Test func anArtifactPathOutOfItsFolderIsRefused() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        let csrf = try await browser.signIn("dave")
        _ = try await browser.post("/runs", ["environment": "staging", "csrf": csrf])
        _ = try await served.waitFor(run: 1, [.succeeded, .failed])
        for path in ["/runs/1/artifacts/build/../../plan.json", "/runs/1/artifacts/build/%2e%2e/%2e%2e/plan.json", "/runs/1/artifacts/build/..%2f..%2fplan.json"] {
            let cookie = browser.cookies["pipeline_session"]!
            let url = served.url
            let out = try await onOwnThread {
                try runProcess(
                URL(filePath: "/usr/bin/curl"),
                ["-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", "-b", "pipeline_session=\(cookie)", url + path])
            }
            #expect(["400", "404"].contains(out.stdout), "\(path): \(out.stdout)")
        }
    }

    @Test func approversDecideSignedInAndTheStarterMayNotApprove() async throws {
        let served = try await ServedPipeline()
        // dave starts prod with an API token: no CSRF needed, no cookie.
        let token = try await served.pipeline("tokens", "create", "--user", "dave", "--name", "ci").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let script = Browser(served.url)
        script.bearer = token
        let started = try await script.send("POST", "/api/v1/runs", body: #"{"environment":"prod"}"#, type: "application/json")
        #expect(started.status == 201, "\(started.text)")
        _ = try await served.waitFor(run: 1, [.waiting])

        // carol, a viewer who is not an approver: no Approve button, and a forged approval is refused.
        let carol = Browser(served.url)
        let carolCSRF = try await carol.signIn("carol")
        let gate = try await carol.get("/runs/1/approval").text
        #expect(gate.contains("Needs 1 of: alice, bob (not dave, who started it)") && !gate.contains(">Approve<"), "\(gate)")
        #expect(gate.contains("Ship &lt;b&gt;prod&lt;/b&gt;?"))
        let forged = try await carol.post("/runs/1/approve", ["csrf": carolCSRF])
        #expect(forged.status == 403 && forged.text.contains("carol may not approve release of run 1"), "\(forged.text)")
        #expect(try served.store.run(1)?.status == .waiting)

        // bob (a viewer, but one of the gate's approvers) approves; the run goes on in a process of its own.
        let bob = Browser(served.url)
        let bobCSRF = try await bob.signIn("bob")
        #expect(try await bob.get("/runs/1/approval").text.contains(">Approve<"))
        let approved = try await bob.post("/runs/1/approve", ["csrf": bobCSRF, "comment": "ship it"])
        #expect(approved.status == 303, "\(approved.text)")
        let run = try await served.waitFor(run: 1, [.succeeded, .failed])
        #expect(run.shownStatus == .succeeded, "\(run)")
        let decisions = try served.store.approvals(run: 1, stage: "release")
        #expect(decisions.contains { $0.user == "bob" && $0.decision == .approved && $0.comment == "ship it" })
        let audit = try served.store.auditEntries()
        #expect(audit.contains { $0.action == "approved" && $0.actor == "bob" && $0.identity == .serverUser && $0.target == "run 1" })
        #expect(audit.contains { $0.action == "run.started" && $0.actor == "dave" && $0.identity == .token })

        // alice starts the next prod run herself and may not approve it; bob may reject it.
        let alice = Browser(served.url)
        let aliceCSRF = try await alice.signIn("alice")
        _ = try await alice.post("/runs", ["environment": "prod", "csrf": aliceCSRF])
        _ = try await served.waitFor(run: 2, [.waiting])
        let own = try await alice.post("/runs/2/approve", ["csrf": aliceCSRF])
        #expect(own.status == 403 && own.text.contains("alice started run 2 and may not approve it"), "\(own.text)")
        let noReason = try await bob.post("/runs/2/reject", ["csrf": bobCSRF])
        #expect(noReason.status == 400)
        let rejected = try await bob.post("/runs/2/reject", ["csrf": bobCSRF, "reason": "not today"])
        #expect(rejected.status == 303)
        #expect(try served.store.run(2)?.shownStatus == .failed)
    }

    @Test func signInIsRateLimited() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        for _ in 0..<5 {
            let wrong = try await browser.post("/signin", ["user": "alice", "password": "wrong password!"])
            #expect(wrong.status == 401)
        }
        let limited = try await browser.post("/signin", ["user": "alice", "password": ServedPipeline.password])
        #expect(limited.status == 429 && limited.header("retry-after") != nil, "\(limited.status)")
        #expect(browser.cookies["pipeline_session"] == nil)
    }

    @Test func aRunOutlivesTheServerAndCanBeCancelledFromIt() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        let csrf = try await browser.signIn("dave")
        _ = try await browser.post("/runs", ["environment": "slow", "csrf": csrf])
        _ = try await served.waitFor(run: 1, [.running])
        served.kill()  // SIGKILL
        try await Task.sleep(for: .milliseconds(500))
        #expect(try served.store.run(1)?.shownStatus == .running)

        try await served.start()
        let again = Browser(served.url)
        let newCSRF = try await again.signIn("dave")
        let cancelled = try await again.post("/runs/1/cancel", ["csrf": newCSRF])
        #expect(cancelled.status == 303, "\(cancelled.text)")
        let run = try await served.waitFor(run: 1, [.cancelled, .failed, .succeeded], seconds: 90)
        #expect(run.shownStatus == .cancelled, "\(run)")
        #expect(try served.store.auditEntries().contains { $0.action == "cancelled" && $0.actor == "dave" })
    }

    @Test func aRunWhoseRunnerWasKilledIsResumedFromItsPage() async throws {
        let served = try await ServedPipeline()
        let dave = Browser(served.url)
        let csrf = try await dave.signIn("dave")
        _ = try await dave.post("/runs", ["environment": "staging", "csrf": csrf])
        let running = try await served.waitFor(run: 1, [.running])
        // Killed with SIGKILL while its build stage prints: the run is interrupted once its owner is provably gone.
        for _ in 0..<200 where try served.store.stageRuns(1).first(where: { $0.stageID == "build" })?.status != .running {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(kill(Int32(try #require(running.pid)), SIGKILL) == 0)
        _ = try await served.waitFor(run: 1, [.interrupted])
        #expect(try await dave.get("/runs/1").text.contains(">Resume</button>"))

        let carol = Browser(served.url)
        let viewerCSRF = try await carol.signIn("carol")
        #expect(try await carol.post("/runs/1/resume", ["csrf": viewerCSRF]).status == 403)
        let resumed = try await dave.post("/runs/1/resume", ["csrf": csrf])
        #expect(resumed.status == 303, "\(resumed.status) \(resumed.text)")
        let run = try await served.waitFor(run: 1, [.succeeded, .failed, .interrupted, .cancelled])
        #expect(run.shownStatus == .succeeded, "\(run)")
        #expect(try served.store.stageRuns(1).first { $0.stageID == "build" }?.attempts == 2)
        #expect(try served.store.auditEntries().contains { $0.action == "resumed" && $0.actor == "dave" && $0.target == "run 1" })
        // A finished run cannot be resumed.
        #expect(try await dave.post("/runs/1/resume", ["csrf": csrf]).status == 409)
    }

    @Test func theRunsListFiltersInTheQuery() async throws {
        let served = try await ServedPipeline()
        for environment in ["staging", "broken", "staging"] { _ = try await served.pipeline("run", environment) }
        let browser = Browser(served.url)
        try await browser.signIn("carol")
        func ids(_ query: String) async throws -> [Int] {
            try #require(try await browser.get("/api/v1/runs?" + query).json() as? [[String: Any]]).compactMap { $0["id"] as? Int }
        }
        #expect(try await ids("environment=staging") == [3, 1])
        #expect(try await ids("status=failed") == [2])
        #expect(try await ids("environment=staging&limit=1") == [3])
        #expect(try await ids("trigger=cli&status=succeeded") == [3, 1])
        #expect(try await ids("trigger=hook").isEmpty)
    }

    @Test func theAuditSaysALocalRunWasStartedByAnUnverifiedIdentity() async throws {
        let served = try await ServedPipeline()
        let local = try await served.pipeline("run", "staging")
        #expect(local.status == 0, "\(local.stderr)")
        let entries = try served.store.auditEntries()
        #expect(entries.count == 1 && entries[0].action == "run.started" && entries[0].identity == .local && entries[0].target == "run 1", "\(entries)")
        // The same run as the server shows it: started by the local user, through the CLI.
        let browser = Browser(served.url)
        try await browser.signIn("carol")
        let audit = try await browser.get("/audit").text
        #expect(audit.contains("<td>local</td><td>run.started</td><td>run 1</td>"), "\(audit)")
    }

    /// schemathesis (PyPI) generates requests from the served OpenAPI document, valid and invalid, and checks every
    /// answer: documented status codes, bodies matching their schemas, invalid input refused, valid input not.
    @Test func theAPIConformsToItsOpenAPIDocument() async throws {
        let served = try await ServedPipeline()
        _ = try await served.pipeline("run", "staging")
        let token = try await served.pipeline("tokens", "create", "--user", "alice").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let url = served.url
        let scratch = TemporaryDirectory()  // its cwd: schemathesis leaves a .schemathesis cache there
        let check = try await onOwnThread {
            try runProcess(
                URL(filePath: "/usr/bin/env"),
                ["python3", "-m", "schemathesis.cli", "run", url + "/api/v1/openapi.json", "--url", url + "/api/v1", "-H", "Authorization: Bearer \(token)",
                 "-c", "all", "-n", "25", "--generation-deterministic", "--no-color"],
                in: scratch.url, environment: ["SCHEMATHESIS_HOOKS": ""])
        }
        #expect(check.status == 0, "\(check.stdout.suffix(6000))\(check.stderr.suffix(2000))")
        #expect(check.stdout.contains("passed"))
    }

    @Test func theOpenAPIDocumentDescribesTheAPI() async throws {
        let served = try await ServedPipeline(users: false)
        let response = try await Browser(served.url).get("/api/v1/openapi.json")
        let document = try #require(try response.json() as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        for path in ["/environments", "/runs", "/runs/{id}", "/runs/{id}/events", "/runs/{id}/stages/{stage}/log", "/runs/{id}/cancel", "/runs/{id}/resume", "/runs/{id}/approval", "/runs/{id}/approve", "/runs/{id}/reject", "/audit"] {
            #expect(paths[path] != nil, "\(path)")
        }
    }

    @Test func usersAndTokensFromTheCLI() async throws {
        let served = try await ServedPipeline(users: false)
        let added = try await served.pipeline("users", "add", "erin", "--role", "deployer", "--password-stdin", stdin: "a long enough password")
        #expect(added.status == 0 && added.stdout == "added erin (deployer)\n", "\(added.stderr)")
        let again = try await served.pipeline("users", "add", "erin", "--role", "viewer", "--password-stdin", stdin: "a long enough password")
        #expect(again.status == 2 && again.stderr.contains("user 'erin' exists already"))
        let short = try await served.pipeline("users", "add", "frank", "--role", "viewer", "--password-stdin", stdin: "short")
        #expect(short.status == 2 && short.stderr.contains("at least 12 characters"))
        let badRole = try await served.pipeline("users", "add", "frank", "--role", "root", "--password-stdin", stdin: "a long enough password")
        #expect(badRole.status != 0 && badRole.stderr.contains("root"))
        let badName = try await served.pipeline("users", "add", "../x", "--role", "viewer", "--password-stdin", stdin: "a long enough password")
        #expect(badName.status == 2 && badName.stderr.contains("is not allowed"))
        #expect(try served.store.users().map(\.name) == ["erin"])
        let token = try await served.pipeline("tokens", "create", "--user", "erin")
        #expect(token.status == 0 && token.stdout.hasPrefix("pl_"))
        // Kept hashed: the token's text is nowhere in the state database.
        let database = try Data(contentsOf: served.home.url.appending(path: "state.db"))
        #expect(database.range(of: Data(token.stdout.trimmingCharacters(in: .whitespacesAndNewlines).utf8)) == nil)
        #expect(database.range(of: Data("a long enough password".utf8)) == nil)
        let nobody = try await served.pipeline("tokens", "create", "--user", "nobody")
        #expect(nobody.status == 2 && nobody.stderr.contains("there is no user 'nobody'"))
        // The audit is append-only, in the database itself.
        let store = try served.store
        #expect(throws: (any Error).self) { try store.database.execute("DELETE FROM audit") }
        #expect(try store.auditEntries().map(\.action) == ["user.added", "token.created"])
    }
}

/// The CLI through the server: `pipeline login`, then `run`, `approve` and `reject` with `--server` act as the
/// verified user; an environment that requires verified approvals refuses a local approval.
@Suite(.serialized) struct ServerLoginTests {
    @Test func aLaptopApprovalGoesThroughTheServerAsAVerifiedUser() async throws {
        let served = try await ServedPipeline()
        let wrong = try await served.pipeline("login", served.url, "--user", "bob", "--password-stdin", stdin: "not the password")
        #expect(wrong.status == 2 && wrong.stderr.contains("wrong user name or password"), "\(wrong.stderr)")
        let notLoggedIn = try await served.pipeline("approve", "prod", "--server")
        #expect(notLoggedIn.status == 2 && notLoggedIn.stderr.contains("not logged in to a server"), "\(notLoggedIn.stderr)")

        // dave starts prod through the server; it waits for an approver.
        let daveToken = try await served.pipeline("tokens", "create", "--user", "dave").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let asDave = try await served.pipeline("login", served.url, "--token-stdin", stdin: daveToken)
        #expect(asDave.status == 0 && asDave.stdout.contains("as dave (deployer)"), "\(asDave.stderr)")
        let started = try await served.pipeline("run", "prod", "--server")
        #expect(started.status == 0 && started.stdout.contains("run 1 of prod started on \(served.url)"), "\(started.stdout)\(started.stderr)")
        _ = try await served.waitFor(run: 1, [.waiting])
        #expect(try served.store.run(1)?.user == "dave")

        // A local approval is refused: prod requires verified approvals.
        let local = try await served.pipeline("approve", "prod")
        #expect(local.status == 2 && local.stderr.contains("prod requires verified approvals"), "\(local.stderr)")
        // dave may not approve his own run through the server either.
        let own = try await served.pipeline("approve", "prod", "--server")
        #expect(own.status == 2 && own.stderr.contains("dave may not approve release of run 1"), "\(own.stderr)")

        let asBob = try await served.pipeline("login", served.url, "--user", "bob", "--password-stdin", stdin: ServedPipeline.password)
        #expect(asBob.status == 0 && asBob.stdout.contains("as bob (viewer)"), "\(asBob.stderr)")
        let file = served.home.url.appending(path: "login/login.json").path
        #expect(((try FileManager.default.attributesOfItem(atPath: file))[.posixPermissions] as? Int) == 0o600)
        let approved = try await served.pipeline("approve", "prod", "--server", "--comment", "from my laptop")
        #expect(approved.status == 0 && approved.stdout.contains("run 1: approved by bob; continuing"), "\(approved.stdout)\(approved.stderr)")
        #expect(try await served.waitFor(run: 1, [.succeeded, .failed]).shownStatus == .succeeded)
        let audit = try served.store.auditEntries()
        #expect(audit.contains { $0.action == "approved" && $0.actor == "bob" && $0.identity == .token && $0.detail == "from my laptop" })
        #expect(audit.contains { $0.action == "token.created" && $0.actor == "bob" && $0.identity == .serverUser })

        // Rejecting through the server needs a reason, as locally.
        _ = try await served.pipeline("login", served.url, "--token-stdin", stdin: daveToken)
        _ = try await served.pipeline("run", "prod", "--server")
        _ = try await served.waitFor(run: 2, [.waiting])
        _ = try await served.pipeline("login", served.url, "--user", "bob", "--password-stdin", stdin: ServedPipeline.password)
        let rejected = try await served.pipeline("reject", "prod", "--server", "--reason", "not now")
        #expect(rejected.status == 0 && rejected.stdout.contains("run 2: rejected by bob"), "\(rejected.stdout)\(rejected.stderr)")
    }

    @Test func rollbacksNeedTheRightPeople() async throws {
        let served = try await ServedPipeline()
        let carol = Browser(served.url)
        let csrf = try await carol.signIn("carol")
        #expect(try await carol.get("/services/nope").status == 404)
        let viewer = try await carol.post("/services/api/rollback", ["csrf": csrf, "env": "staging", "to": "previous"])
        #expect(viewer.status == 404 || viewer.status == 403)
    }
}

/// The pages in real headless Chromium (selenium, Debian's chromium-driver): Tests/browser/serve_walkthrough.py.
/// Its screenshots of the approval and run pages are kept in .build/test-artifacts/browser/.
@Suite struct ServerBrowserTests {
    @Test func aTeamWalksThroughThePagesInChromium() async throws {
        let served = try await ServedPipeline()
        let artifacts = Project.root.appending(path: ".build/test-artifacts/browser")
        try? FileManager.default.removeItem(at: artifacts)  // none yet is fine
        // The python3 on PATH, where runner/setup installed selenium.
        let url = served.url
        let walk = try await onOwnThread {
            try runProcess(
                URL(filePath: "/usr/bin/env"),
                ["python3", Project.root.appending(path: "Tests/browser/serve_walkthrough.py").path, url, ServedPipeline.password, artifacts.path])
        }
        #expect(walk.status == 0, "\(walk.stdout)\(walk.stderr)")
        for shot in ["approval.png", "run.png"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: artifacts.appending(path: shot).path)[.size] as? Int) ?? 0
            #expect(size > 10_000, "\(shot): \(size) bytes")
        }
        let audit = try served.store.auditEntries()
        #expect(audit.contains { $0.action == "approved" && $0.actor == "bob" && $0.detail == "looks good" })
        #expect(!audit.contains { $0.action == "approved" && $0.actor == "carol" })
    }
}

/// What the adversarial pass on the server found, each as a test that failed before its fix.
@Suite(.serialized) struct ServerHardeningTests {
    @Test func aHugeLastEventIDDoesNotCrashTheServer() async throws {
        let served = try await ServedPipeline()
        _ = try await served.pipeline("run", "staging")
        let browser = Browser(served.url)
        try await browser.signIn("carol")
        for id in ["9223372036854775808", "18446744073709551615", "9223372036854775807", "-5", "junk"] {
            let events = try await browser.get("/api/v1/runs/1/stages/build/log", headers: [("Last-Event-ID", id)])
            #expect(events.status == 200 && events.text.contains("out line 1") && events.text.hasSuffix("event: end\ndata: succeeded\n\n"), "\(id): \(events.text)")
        }
        #expect(try await browser.get("/healthz").status == 200)
    }

    @Test func theLogOfAStageARunNeverStartedEndsWithTheRun() async throws {
        let served = try await ServedPipeline()
        let bob = Browser(served.url)
        let csrf = try await bob.signIn("bob")
        _ = try await served.pipeline("run", "prod")
        _ = try await served.waitFor(run: 1, [.waiting])
        _ = try await bob.post("/runs/1/reject", ["csrf": csrf, "reason": "no"])
        let events = try await bob.get("/api/v1/runs/1/stages/after/log")
        #expect(events.text == "event: end\ndata: pending\n\n", "\(events.text)")
    }

    @Test func signInLimitsCannotBeResetOrUsedToLockOutOthers() async throws {
        let served = try await ServedPipeline()
        // Guesses at alice between sign-ins as oneself still count.
        let attacker = Browser(served.url)
        for round in 0..<5 {
            #expect(try await attacker.post("/signin", ["user": "alice", "password": "guess \(round) wrong"]).status == 401)
            if round == 2 { _ = try await Browser(served.url).post("/signin", ["user": "carol", "password": ServedPipeline.password]) }
        }
        #expect(try await attacker.post("/signin", ["user": "alice", "password": ServedPipeline.password]).status == 429)
        // alice at another address signs in all the same.
        let url = served.url
        let elsewhere = try await onOwnThread {
            try runProcess(
                URL(filePath: "/usr/bin/curl"),
                ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.2", "-d", "user=alice&password=correct+horse+battery", url + "/signin"])
        }
        #expect(elsewhere.stdout == "303", "\(elsewhere.stdout) \(elsewhere.stderr)")
        // A failed sign-in keeps no unknown name (it is often a password typed in the wrong field).
        _ = try await attacker.post("/signin", ["user": "my secret passphrase", "password": "x"])
        #expect(try served.store.auditEntries().last?.actor == "(unknown user)")
    }

    @Test func artifactsWithAnyNameDownloadAndHardLinksAreRefused() async throws {
        let served = try await ServedPipeline()
        _ = try await served.pipeline("run", "staging")
        let artifacts = served.home.url.appending(path: "runs/1/artifacts/build")
        for name in ["a b.txt", "ü.txt", "h#1.txt", "q?.txt"] {
            try Data("named \(name)\n".utf8).write(to: artifacts.appending(path: name))
        }
        try FileManager.default.linkItem(at: served.home.url.appending(path: "server.key"), to: artifacts.appending(path: "key"))
        let browser = Browser(served.url)
        try await browser.signIn("carol")
        let page = try await browser.get("/runs/1").text
        for name in ["a b.txt", "ü.txt", "h#1.txt", "q?.txt"] {
            let link = try #require(page.range(of: #"href="(/runs/1/artifacts/build/[^"]*)">\#(HTML.escapedForTest(name))<"#, options: .regularExpression), "\(name)")
            let href = String(page[link].dropFirst(6).prefix { $0 != "\"" })
            let file = try await browser.get(href)
            #expect(file.status == 200 && file.text == "named \(name)\n" && file.header("cache-control") == "no-store", "\(href): \(file.status)")
        }
        let key = try await browser.get("/runs/1/artifacts/build/key")
        #expect(key.status == 403 && key.text.contains("hard link"), "\(key.status)")
    }

    @Test func commentsAndReasonsAreMaskedWithThePipelinesSecrets() async throws {
        let served = try await ServedPipeline()
        _ = try await served.pipeline("run", "prod")
        _ = try await served.waitFor(run: 1, [.waiting])
        let bob = Browser(served.url)
        let csrf = try await bob.signIn("bob")
        _ = try await bob.post("/runs/1/approve", ["csrf": csrf, "comment": "token is \(ServedPipeline.secret)"])
        _ = try await served.waitFor(run: 1, [.succeeded, .failed])
        let audit = try await bob.get("/api/v1/audit?format=jsonl").text
        #expect(!audit.contains(ServedPipeline.secret) && audit.contains("token is ***"), "\(audit)")
        // A rejection's reason too.
        _ = try await served.pipeline("run", "prod")
        _ = try await served.waitFor(run: 2, [.waiting])
        _ = try await bob.post("/runs/2/reject", ["csrf": csrf, "reason": "leaked \(ServedPipeline.secret)"])
        #expect(try served.store.run(2)?.message?.contains(ServedPipeline.secret) == false)
        #expect(try served.store.run(2)?.message?.contains("leaked ***") == true)
    }

    @Test func smallerFindings() async throws {
        let served = try await ServedPipeline()
        let browser = Browser(served.url)
        // HEAD answers as GET does, without a body.
        #expect(try await browser.send("HEAD", "/healthz").status == 200)
        // A tab in `next` does not lead off the site.
        let tab = try await browser.post("/signin", ["user": "dave", "password": ServedPipeline.password, "next": "/\t/evil.com"])
        #expect(tab.status == 303 && tab.header("location") == "/environments", "\(String(describing: tab.header("location")))")
        // Another Authorization scheme (a proxy's Basic auth) leaves the session cookie in charge; `bearer` is as good as `Bearer`.
        #expect(try await browser.get("/api/v1/runs", headers: [("Authorization", "Basic YTpi")]).status == 200)
        let token = try await served.pipeline("tokens", "create", "--user", "carol").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await Browser(served.url).get("/api/v1/whoami", headers: [("Authorization", "bearer \(token)")]).status == 200)
        // Sign-in from another site is refused.
        #expect(try await Browser(served.url).post("/signin", ["user": "dave", "password": ServedPipeline.password], headers: [("Origin", "https://evil.example")]).status == 403)
        // JSON that is not an object says so.
        let csrf = try await browser.csrf()
        let string = try await browser.send("POST", "/api/v1/runs", body: #""staging""#, type: "application/json", headers: [("X-CSRF-Token", csrf)])
        #expect(string.status == 400 && string.text.contains("must be a JSON object"), "\(string.text)")
        // A port in use is bad input, said plainly.
        let port = try #require(served.url.split(separator: ":").last)
        let busy = try await served.pipeline("serve", "--listen", "127.0.0.1:\(port)")
        #expect(busy.status == 2 && busy.stderr.contains("cannot listen on 127.0.0.1:\(port)"), "\(busy.status) \(busy.stderr)")
        // Passwords of spaces are refused; a removed user's tokens and sessions stop working.
        let spaces = try await served.pipeline("users", "set-password", "dave", "--password-stdin", stdin: "              ")
        #expect(spaces.status == 2)
        let removed = try await served.pipeline("users", "remove", "carol")
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try await Browser(served.url).get("/api/v1/whoami", headers: [("Authorization", "Bearer \(token)")]).status == 401)
        #expect(try await Browser(served.url).post("/signin", ["user": "carol", "password": ServedPipeline.password]).status == 401)
        let again = try await served.pipeline("users", "add", "carol", "--role", "viewer", "--password-stdin", stdin: "a long enough password")
        #expect(again.status == 2 && again.stderr.contains("was removed"))
    }
}

extension HTML {
    /// How the pages write `text` (for finding links in them).
    static func escapedForTest(_ text: String) -> String {
        NSRegularExpression.escapedPattern(for: text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;"))
    }
}

enum HTML {}
