import ArgumentParser
import Foundation
import HTTP
import StageContract

/// A login kept by `pipeline login`: the server's URL and an API token, in a file only its owner can read.
struct ServerLogin: Codable {
    var url: String
    var user: String
    var token: String

    /// `PIPELINE_LOGIN_FILE`, else `$XDG_CONFIG_HOME/pipeline/login.json`, else `~/.config/pipeline/login.json`.
    static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["PIPELINE_LOGIN_FILE"], !path.isEmpty { return URL(filePath: path) }
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : URL(filePath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appending(path: ".config")
        return config.appending(path: "pipeline/login.json")
    }

    static func load() throws -> ServerLogin {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw ServerCallError(status: nil, message: "not logged in to a server: run `pipeline login URL --user NAME` first (\(file.path) does not exist)")
        }
        do {
            return try JSONDecoder().decode(ServerLogin.self, from: data)
        } catch {
            throw ServerCallError(status: nil, message: "\(file.path) is not a login this pipeline wrote (\(error)); run `pipeline login URL` again")
        }
    }

    func save() throws {
        let folder = Self.file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try OwnerOnly.write(JSONEncoder().encode(self), to: Self.file)
    }
}

/// What a server answered when it refused, or why it could not be asked.
struct ServerCallError: Error, CustomStringConvertible {
    /// The HTTP status; nil when the server was not reached (or there is no login).
    let status: Int?
    let message: String
    var description: String { message }

    /// 2 for a refusal (bad input, not allowed, not found, a conflict); 74 when the server could not be reached or
    /// failed (the decision was not recorded).
    var exitCode: ExitCode {
        guard let status else { return message.hasPrefix("not logged in") || message.contains("is not a login") ? Exit.badInput : Exit.notRecorded }
        return (400..<500).contains(status) ? Exit.badInput : Exit.notRecorded
    }
}

/// Calls `pipeline serve`'s API with the kept login (over libcurl, like every request the CLI makes).
struct ServerClient {
    let base: String
    let token: String?

    init(login: ServerLogin) {
        base = login.url
        token = login.token
    }

    init(url: String, token: String?) {
        base = url
        self.token = token
    }

    /// Sends `body` (a JSON object) to `path` under /api/v1 and returns the decoded JSON answer.
    func call(_ method: String, _ path: String, _ body: [String: String]? = nil) async throws -> Any {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        var payload: HTTPBody = .none
        if let body {
            headers.append(("Content-Type", "application/json"))
            payload = .bytes(Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
        }
        let url = base.hasSuffix("/") ? String(base.dropLast()) : base
        let response: HTTPResponse
        do {
            response = try await HTTPClient().send(HTTPRequest(method: method, url: url + "/api/v1" + path, headers: headers, body: payload, timeout: 180))
        } catch {
            throw ServerCallError(status: nil, message: "could not reach the server at \(url): \(error.message)")
        }
        let json = try? JSONSerialization.jsonObject(with: Data(response.body))  // nil: the server answered no JSON, said below
        guard (200..<300).contains(response.status) else {
            let said = (json as? [String: Any])?["error"] as? String ?? String(decoding: response.body.prefix(300), as: UTF8.self)
            throw ServerCallError(status: response.status, message: "the server refused (\(response.status)): \(said)")
        }
        guard let json else { throw ServerCallError(status: response.status, message: "the server's answer is not JSON") }
        return json
    }

    /// The run of `environment` that waits for approval (or `run` when given).
    func waitingRun(_ environment: String, run: Int?) async throws -> Int {
        if let run { return run }
        let runs = try await call("GET", "/runs?environment=\(environment)&status=waiting&limit=1") as? [[String: Any]] ?? []
        guard let id = runs.first?["id"] as? Int else {
            throw ServerCallError(status: 404, message: "no run of \(environment) waits for approval on \(base)")
        }
        return id
    }
}

extension ServerCallError {
    /// Runs a `--server` command's body: a refusal or an unreachable server is said on stderr with its exit code.
    static func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ServerCallError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw error.exitCode
        }
    }
}
