import Foundation
import HTTP
import PipelineDSL

/// One attempt of a health check: when, how long, and what was seen.
public struct HealthAttempt: Codable, Sendable, Equatable {
    /// When it started (ISO 8601).
    public let time: String
    /// Milliseconds it took.
    public let latencyMilliseconds: Int
    /// Whether it counts as healthy.
    public let healthy: Bool
    /// What was seen (`HTTP 200`, `grpc-status 14: ...`, `connection refused`).
    public let detail: String
}

/// Asks a service once whether it is healthy, over HTTP(S), gRPC (HTTP/2 through libcurl) or TCP.
public struct HealthProber: Sendable {
    let http: HTTPClient
    /// `HOST:PORT:CONNECT_HOST:CONNECT_PORT` redirections (curl's --connect-to), from `PIPELINE_CONNECT_TO`, so
    /// local runs reach loopback stand-ins under the services' real names.
    let connectTo: [String]

    /// A prober; `connectTo` as curl's `--connect-to`.
    public init(http: HTTPClient = HTTPClient(), connectTo: [String] = []) {
        self.http = http
        self.connectTo = connectTo
    }

    /// The redirections `PIPELINE_CONNECT_TO` (comma-separated) lists.
    public static func connectTo(environment: [String: String]) -> [String] {
        (environment["PIPELINE_CONNECT_TO"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// One attempt at `host:port`, given at most `timeout` seconds.
    public func probe(_ probe: HealthProbe, host: String, port: Int, timeout: Double) async -> HealthAttempt {
        let started = Date()
        let clock = ContinuousClock.now
        let (healthy, detail) = await check(probe, host: host, port: port, timeout: timeout)
        let elapsed = ContinuousClock.now - clock
        let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return HealthAttempt(time: started.formatted(.iso8601), latencyMilliseconds: milliseconds, healthy: healthy, detail: detail)
    }

    private func check(_ probe: HealthProbe, host: String, port: Int, timeout: Double) async -> (Bool, String) {
        let authority = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        do {
            switch probe {
            case .http(let spec):
                var request = HTTPRequest(
                    method: spec.method, url: "\(spec.tls ? "https" : "http")://\(authority)\(spec.path)",
                    headers: spec.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, timeout: timeout,
                    connectTimeout: timeout)
                request.connectTo = connectTo
                request.freshConnection = true
                let response = try await http.send(request)
                return Self.judge(spec, response)
            case .grpc(let method):
                return try await grpc(authority: authority, method: method, message: [], timeout: timeout, health: false)
            case .grpcHealth(let service):
                let name = Array(service.utf8)
                let message: [UInt8] = name.isEmpty ? [] : [0x0a] + Self.varint(UInt64(name.count)) + name
                return try await grpc(authority: authority, method: "/grpc.health.v1.Health/Check", message: message, timeout: timeout, health: true)
            case .tcp:
                var request = HTTPRequest(url: "http://\(authority)/", timeout: timeout, connectTimeout: timeout)
                request.connectOnly = true
                request.connectTo = connectTo
                _ = try await http.send(request)
                return (true, "connected")
            }
        } catch {
            return (false, error.message)
        }
    }

    static func judge(_ spec: HTTPProbe, _ response: HTTPResponse) -> (Bool, String) {
        var detail = "HTTP \(response.status)"
        guard (spec.expectStatusMin...spec.expectStatusMax).contains(response.status) else {
            return (false, detail + " (wanted \(spec.expectStatusMin)-\(spec.expectStatusMax))")
        }
        if let wanted = spec.bodyContains, !response.text.contains(wanted) {
            return (false, detail + ", body without \"\(wanted)\"")
        }
        if let field = spec.jsonField {
            guard let object = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body)) else {
                return (false, detail + ", body is not JSON")
            }
            var value: JSONValue? = object
            for key in field.split(separator: ".") {
                if case .object(let members)? = value { value = members[String(key)] } else { value = nil }
            }
            let text: String? = switch value {
            case .string(let string)?: string
            case .integer(let number)?: String(number)
            case .number(let number)?: String(number)
            case .bool(let flag)?: flag ? "true" : "false"
            case .null?: "null"
            default: nil
            }
            guard let text else { return (false, detail + ", no JSON field \(field)") }
            if let wanted = spec.jsonEquals, text != wanted { return (false, detail + ", \(field) is \"\(text)\" (wanted \"\(wanted)\")") }
            detail += ", \(field)=\(text)"
        }
        return (true, detail)
    }

    private func grpc(authority: String, method: String, message: [UInt8], timeout: Double, health: Bool) async throws(HTTPError) -> (Bool, String) {
        let length = UInt32(message.count)
        let frame: [UInt8] = [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + message
        var request = HTTPRequest(
            method: "POST", url: "http://\(authority)\(method)",
            headers: [("Content-Type", "application/grpc"), ("TE", "trailers"), ("grpc-timeout", "\(max(1, Int(timeout * 1000)))m")],
            body: .bytes(frame), timeout: timeout, connectTimeout: timeout)
        request.http2PriorKnowledge = true
        request.connectTo = connectTo
        request.freshConnection = true
        let response = try await http.send(request)
        guard response.status == 200 else { return (false, "HTTP \(response.status) (not a gRPC answer)") }
        guard let status = response.header("grpc-status") else { return (false, "no grpc-status in the answer") }
        guard status == "0" else {
            let text = response.header("grpc-message").flatMap { $0.removingPercentEncoding } ?? ""
            return (false, "grpc-status \(status)\(text.isEmpty ? "" : ": \(text)")")
        }
        guard health else { return (true, "grpc-status 0") }
        // HealthCheckResponse: field 1 (status) as a varint; 1 is SERVING.
        let body = response.body
        let serving = body.count >= 7 && body[5] == 0x08 ? Int(body[6]) : 0
        let names = [0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"]
        return (serving == 1, "health \(names[serving] ?? String(serving))")
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7f)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }
}
