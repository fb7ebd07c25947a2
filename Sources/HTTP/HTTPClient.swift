import CCurl
import Foundation
import Synchronization

/// An HTTP request.
public struct HTTPRequest: Sendable {
    /// `GET`, `PUT`, ...
    public var method: String
    /// The absolute URL.
    public var url: String
    /// Headers, in order.
    public var headers: [(name: String, value: String)]
    /// The body sent.
    public var body: HTTPBody
    /// Seconds the whole exchange may take (0: no limit).
    public var timeout: Double
    /// Seconds connecting may take.
    public var connectTimeout: Double
    /// Seconds the transfer may go without moving a byte before it is given up (0: no such limit); for long
    /// uploads whose total time cannot be bounded in advance.
    public var stallTimeout: Double = 0
    /// Speak HTTP/2 from the first byte over plain TCP (h2c, as gRPC servers without TLS expect).
    public var http2PriorKnowledge = false
    /// Open a new connection for this request and close it after (a health probe should see what a new client sees).
    public var freshConnection = false
    /// Connect, then stop: no request is sent (a TCP probe).
    public var connectOnly = false
    /// Where to connect instead, in curl's `--connect-to` form `HOST:PORT:CONNECT_HOST:CONNECT_PORT`: the
    /// request still names (and for TLS, verifies) the original host.
    public var connectTo: [String] = []

    /// A request; by default a 30-second exchange with a 10-second connect.
    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: HTTPBody = .none,
        timeout: Double = 30, connectTimeout: Double = 10
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
    }
}

/// What a request sends.
public enum HTTPBody: Sendable {
    /// Nothing.
    case none
    /// These bytes.
    case bytes([UInt8])
    /// A part of a file, read as it is sent (never held in memory).
    case file(URL, offset: UInt64, length: UInt64)
}

/// What came back.
public struct HTTPResponse: Sendable {
    /// The status code.
    public let status: Int
    /// The headers of the final response, in order.
    public let headers: [(name: String, value: String)]
    /// The body, unless it was streamed to a handler.
    public let body: [UInt8]
    /// The HTTP version spoken (`1.1`, `2`).
    public let version: String

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no response.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    /// The kinds of failure.
    public enum Kind: Sendable, Equatable {
        /// Could not connect (refused, unreachable, DNS).
        case connect
        /// A time limit passed.
        case timeout
        /// TLS failed, such as an untrusted certificate.
        case tls
        /// The transfer broke off.
        case transfer
        /// The request itself is wrong (bad URL).
        case request
    }

    /// The kind.
    public let kind: Kind
    /// The URL.
    public let url: String
    /// libcurl's message.
    public let message: String

    /// "GET https://...: Connection refused"
    public var description: String { "\(url): \(message)" }
}

/// An HTTP client over libcurl: connections are kept and reused between requests of one client, TLS is verified
/// (with `SSL_CERT_FILE` or `caFile` when given), HTTP/2 is used where the server offers it over TLS, and the usual
/// proxy variables (`https_proxy`, `no_proxy`, ...) apply.
public final class HTTPClient: Sendable {
    /// Handles whose connections are free for the next request.
    private let idle = Mutex<[EasyHandle]>([])
    private let caFile: String?

    /// A client; `caFile` is a PEM bundle of the CAs to trust instead of the system's.
    public init(caFile: String? = ProcessInfo.processInfo.environment["SSL_CERT_FILE"]) {
        Curl.ensureInitialised()
        self.caFile = caFile
    }

    /// Sends `request` and collects the response.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let body = Mutex<[UInt8]>([])
        let response = try await send(request) { chunk in body.withLock { $0.append(contentsOf: chunk) } }
        return HTTPResponse(status: response.status, headers: response.headers, body: body.withLock { $0 }, version: response.version)
    }

    /// Sends `request`, handing the response body to `onBody` piece by piece as it arrives.
    public func send(
        _ request: HTTPRequest, onBody: @escaping @Sendable (UnsafeRawBufferPointer) -> Void
    ) async throws(HTTPError) -> HTTPResponse {
        // A thread of its own for the blocking transfer: a shared pool (GCD's) can run out of threads when many
        // transfers and other blocking work wait at once, and a request would then wait for a thread, not the network.
        let result: Result<HTTPResponse, HTTPError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: self.perform(request, onBody: onBody))
            }
        }
        return try result.get()
    }

    /// Runs one exchange on a pooled handle (so its connection is reused), blocking the calling thread.
    private func perform(_ request: HTTPRequest, onBody: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) -> Result<HTTPResponse, HTTPError> {
        let handle: EasyHandle
        do {
            handle = try idle.withLock { $0.popLast() } ?? EasyHandle()
        } catch {
            return .failure(HTTPError(kind: .request, url: request.url, message: "\(error)"))
        }
        let result = Transfer(handle: handle, request: request, caFile: caFile, onBody: onBody).run()
        idle.withLock { $0.append(handle) }
        return result
    }
}
