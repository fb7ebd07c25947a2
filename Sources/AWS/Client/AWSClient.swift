import Foundation
import HTTP
import Logging
import Synchronization

/// A small, exact AWS client: signs with SigV4, retries as botocore's standard mode, and speaks the JSON 1.1 and
/// Query protocols and REST-XML (Route 53).
public final class AWSClient: Sendable {
    /// The resolved settings.
    public let configuration: AWSConfiguration
    private let http: HTTPClient
    /// The retry policy and its token bucket, shared by the client's calls.
    private let retry: Mutex<RetryPolicy>
    /// Each call, its request id and time, and each retry, at debug level (`pipeline --verbose`).
    static let logger = Logger(label: "pipeline.aws")

    /// A client for `configuration`.
    public init(configuration: AWSConfiguration, http: HTTPClient = HTTPClient(), retry: RetryPolicy = RetryPolicy()) {
        self.configuration = configuration
        self.http = http
        self.retry = Mutex(retry)
    }

    /// Calls a JSON 1.1 operation (`X-Amz-Target: PREFIX.Operation`) with `input` encoded, and decodes the answer.
    public func json<Output: Decodable>(
        _ service: AWSService, targetPrefix: String, operation: String, input: some Encodable, as output: Output.Type
    ) async throws(AWSError) -> Output {
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(input))
        } catch {
            throw AWSError(service: service.signingName, operation: operation, code: "Encoding", message: "\(error)", requestID: nil, status: 0)
        }
        return try await json(service, targetPrefix: targetPrefix, operation: operation, body: body, as: output)
    }

    /// Calls a JSON 1.1 operation with a body that is already JSON (a rendered template), and decodes the answer.
    public func json<Output: Decodable>(
        _ service: AWSService, targetPrefix: String, operation: String, body: [UInt8], as output: Output.Type
    ) async throws(AWSError) -> Output {
        let response = try await send(
            service, operation: operation, method: "POST", path: "/", query: [],
            headers: [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "\(targetPrefix).\(operation)")],
            body: body)
        do {
            return try JSONDecoder().decode(Output.self, from: Data(response.body))
        } catch {
            throw AWSError(
                service: service.signingName, operation: operation, code: "Decoding",
                message: "the answer is not what the API model says: \(error)", requestID: response.header("x-amzn-requestid"),
                status: response.status)
        }
    }

    /// Calls a Query-protocol operation (`Action=...&Version=...`) and returns the XML answer.
    public func query(
        _ service: AWSService, action: String, version: String, parameters: [(String, String)] = [], signed: Bool = true
    ) async throws(AWSError) -> String {
        let form = ([("Action", action), ("Version", version)] + parameters)
            .map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
        let response = try await send(
            service, operation: action, method: "POST", path: "/", query: [],
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Array(form.utf8),
            signed: signed)
        return response.text
    }

    /// Signs and sends one request, retrying what the policy allows.
    public func send(
        _ service: AWSService, operation: String, method: String, path: String, query: [(String, String)],
        headers: [(String, String)], body: [UInt8], signed: Bool = true
    ) async throws(AWSError) -> HTTPResponse {
        let endpoint = configuration.endpoint(service)
        guard let base = URLComponents(string: endpoint.url), let host = base.host else {
            throw AWSError(service: service.signingName, operation: operation, code: "BadEndpoint", message: "cannot use endpoint \(endpoint)", requestID: nil, status: 0)
        }
        let hostHeader = base.port.map { "\(host):\($0)" } ?? host
        let region = service == .route53 ? "us-east-1" : configuration.region
        var attempt = 0
        while true {
            attempt += 1
            let unsigned = SigningRequest(
                method: method, path: path, query: query, headers: [("Host", hostHeader)] + headers, body: body)
            var sent = unsigned.headers
            if signed {
                let credentials = try await configuration.credentials.credentials()
                let signer = SigV4(service: service.signingName, region: region, credentials: credentials, date: Date())
                sent += signer.signatureHeaders(for: unsigned)
            }
            let queryString = query.isEmpty ? "" : "?" + query.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
            let request = HTTPRequest(
                method: method, url: endpoint.url.trimmingSuffix("/") + path + queryString, headers: sent,
                body: body.isEmpty ? .none : .bytes(body))
            var failure: AWSError
            let started = ContinuousClock.now
            do {
                let response = try await http.send(request)
                let elapsed = ContinuousClock.now - started
                Self.logger.debug(
                    "\(service.signingName) \(operation) → \(response.status) in \(elapsed.milliseconds) ms",
                    metadata: [
                        "request-id": "\(response.header("x-amzn-requestid") ?? response.header("x-amz-request-id") ?? "-")",
                        "attempt": "\(attempt)", "endpoint": "\(URLText.redacted(endpoint.url))",
                    ])
                if (200..<300).contains(response.status) {
                    AWSRequestLog.record(service: service.signingName, operation: operation, status: response.status, code: nil, seconds: elapsed.seconds)
                    retry.withLock { $0.refund() }
                    return response
                }
                failure = AWSError.decode(
                    service: service.signingName, operation: operation, status: response.status, headers: response.headers,
                    body: response.body)
                AWSRequestLog.record(service: service.signingName, operation: operation, status: response.status, code: failure.code, seconds: elapsed.seconds)
            } catch {
                AWSRequestLog.record(service: service.signingName, operation: operation, status: 0, code: nil, seconds: (ContinuousClock.now - started).seconds)
                failure = AWSError(
                    service: service.signingName, operation: operation, code: "\(error.kind)", message: error.message,
                    requestID: nil, status: 0)
            }
            failure.attempts = attempt
            let policy = retry.withLock { $0 }
            guard attempt < policy.maxAttempts, RetryPolicy.isRetryable(failure), retry.withLock({ $0.spend(for: failure) }) else {
                throw failure
            }
            let wait = policy.backoff(afterAttempt: attempt, unit: Double.random(in: 0..<1))
            Self.logger.debug(
                "\(service.signingName) \(operation) failed (\(failure.code)); retrying in \(String(format: "%.2f", wait)) s",
                metadata: ["attempt": "\(attempt) of \(policy.maxAttempts)", "request-id": "\(failure.requestID ?? "-")"])
            try? await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
        }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in milliseconds, to one decimal.
    public var milliseconds: String {
        let (seconds, attoseconds) = components
        return String(format: "%.1f", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }
}
