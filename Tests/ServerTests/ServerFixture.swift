import AWS
import Foundation
import HTTP
import Runner
import Testing
import TestSupport

/// A `pipeline serve` process on a free port over its own state folder, with the served fixture pipeline.
final class ServedPipeline: @unchecked Sendable {
    static let project: TemporaryDirectory = {
        let folder = TemporaryDirectory("pipeline-serve-fixture")
        folder.write(
            "pipelines/Pipeline.swift",
            """
            import PipelineDSL

            Pipeline("served") {
                Environment("staging", branch: "main", region: "us-east-1", cluster: "c")
                Environment("prod", branch: "main", region: "us-east-1", cluster: "c").requiresVerifiedApprovals()
                Environment("broken", branch: "main", region: "us-east-1", cluster: "c")
                Environment("slow", branch: "main", region: "us-east-1", cluster: "c")
                Shell("build", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.25; done; echo '<script>alert(1)</script>'; mkdir -p $PIPELINE_ARTIFACTS; echo kept > $PIPELINE_ARTIFACTS/report.txt")
                    .when(.not(.environment("slow")))
                Shell("long", "echo started; sleep 30; echo finished").when(.environment("slow"))
                Approval("release", approvers: ["alice", "bob"], message: "Ship <b>{env}</b>?").when(.environment("prod"))
                Shell("after", "echo after $PIPELINE_ENV; test $PIPELINE_ENV != broken || { echo 'error: <script>alert(2)</script>' >&2; exit 1; }")
                    .secret("DEPLOY_TOKEN", .environment("SERVE_TEST_SECRET"))
            }
            """)
        return folder
    }()
    static let cache = TemporaryDirectory("pipeline-serve-cache")

    let home = TemporaryDirectory("pipeline-serve-home")
    private(set) var server: ServerProcess?
    private(set) var url = ""

    /// The fixture's users: alice (admin, an approver), bob (viewer, an approver), dave (deployer), carol (viewer).
    static let password = "correct horse battery"
    /// The value of the fixture's one secret (the `after` stage's DEPLOY_TOKEN).
    static let secret = "s3cr3t-value-4242"

    init(users: Bool = true, arguments: [String] = []) async throws {
        if users {
            let store = try StateStore(home: home.url)
            _ = try store.addUser("alice", role: .admin, password: Self.password)
            _ = try store.addUser("bob", role: .viewer, password: Self.password)
            _ = try store.addUser("dave", role: .deployer, password: Self.password)
            _ = try store.addUser("carol", role: .viewer, password: Self.password)
        }
        try await start(arguments)
    }

    var environment: [String: String] {
        [
            "PIPELINE_HOME": home.url.path, "PIPELINE_CACHE_DIR": Self.cache.url.path,
            "PIPELINE_PIPELINES": Self.project.url.appending(path: "pipelines").path,
            "PIPELINE_LOGIN_FILE": home.url.appending(path: "login/login.json").path,
            "SERVE_TEST_SECRET": Self.secret,
        ]
    }

    /// Starts (or restarts) the server and waits for its URL (on a thread of its own: loading the pipeline can take a
    /// cold compile).
    func start(_ extra: [String] = []) async throws {
        let (process, url) = try await onOwnThread { [environment] in try Self.launch(extra, environment: environment) }
        self.url = url
        server = process
    }

    private static func launch(_ extra: [String], environment: [String: String]) throws -> (ServerProcess, String) {
        try ServerProcess.printingURL(Project.executable.path, ["serve", "--listen", "127.0.0.1:0"] + extra, environment: environment)
    }

    /// Kills the server with SIGKILL.
    func kill() { server = nil }

    /// `pipeline ARGS` over this server's state, on a thread of its own.
    func pipeline(_ arguments: String..., stdin: String? = nil) async throws -> ProcessOutput {
        let environment = self.environment
        if let stdin {
            let command = "printf '%s\\n' '\(stdin)' | \"$0\" \"$@\""
            return try await onOwnThread { try runProcess(URL(filePath: "/bin/sh"), ["-c", command, Project.executable.path] + arguments, environment: environment) }
        }
        return try await onOwnThread { try runProcess(Project.executable, arguments, environment: environment) }
    }

    var store: StateStore { get throws { try StateStore(home: home.url) } }

    /// Waits until run `id` is in one of `statuses`.
    func waitFor(run id: Int, _ statuses: Set<RunStatus>, seconds: Double = 120) async throws -> RunRecord {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let run = try store.run(id), statuses.contains(run.shownStatus) { return run }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServedError(description: "run \(id) did not reach \(statuses); it is \(String(describing: try store.run(id)?.shownStatus))")
    }
}

struct ServedError: Error, CustomStringConvertible { let description: String }

/// A client with a cookie jar, over the project's own libcurl client.
final class Browser: @unchecked Sendable {
    let base: String
    private(set) var cookies: [String: String] = [:]
    var bearer: String?
    private let client = HTTPClient()

    init(_ base: String) { self.base = base }

    @discardableResult
    func send(_ method: String, _ path: String, body: String? = nil, type: String = "application/x-www-form-urlencoded", headers: [(String, String)] = []) async throws -> HTTPResponse {
        var all = headers
        if !cookies.isEmpty { all.append(("Cookie", cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))) }
        if let bearer { all.append(("Authorization", "Bearer \(bearer)")) }
        if body != nil { all.append(("Content-Type", type)) }
        let request = HTTPRequest(method: method, url: base + path, headers: all.map { (name: $0.0, value: $0.1) }, body: body.map { .bytes(Array($0.utf8)) } ?? .none, timeout: 60)
        let response = try await client.send(request)
        for (name, value) in response.headers where name.lowercased() == "set-cookie" {
            let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { cookies[pair[0]] = pair[1].isEmpty ? nil : pair[1] }
        }
        return response
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> HTTPResponse { try await send("GET", path, headers: headers) }

    func post(_ path: String, _ fields: [String: String], headers: [(String, String)] = []) async throws -> HTTPResponse {
        try await send("POST", path, body: Self.form(fields), headers: headers)
    }

    static func form(_ fields: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
    }

    /// Signs in with the fixture's password; returns the CSRF token pages carry.
    @discardableResult
    func signIn(_ user: String, password: String = ServedPipeline.password) async throws -> String {
        let response = try await post("/signin", ["user": user, "password": password, "next": "/environments"])
        #expect(response.status == 303, "\(response.status) \(response.text)")
        return try await csrf()
    }

    func csrf() async throws -> String {
        let page = try await get("/environments").text
        guard let range = page.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression) else { return "" }
        return String(page[range].split(separator: "\"")[3])
    }
}

extension HTTPResponse {
    func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(body)) }
}
