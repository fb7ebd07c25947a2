import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runner

/// The request context: Hummingbird's core storage, the client's address (for the SSO proxy's header and sign-in
/// rate limits), and who is asking once `Identity` has looked.
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The peer's IP address (behind a reverse proxy, the proxy's).
    let remoteAddress: String?
    /// The client's address: the peer's, or, when the peer is a trusted proxy, the last address it appended to
    /// `X-Forwarded-For` (set by `ClientAddress`). What the audit records and sign-in limits count by.
    var clientAddress: String?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress
        clientAddress = remoteAddress
    }

    /// Bodies larger than this are refused with 413 (forms and JSON requests are small).
    var maxUploadSize: Int { 64 * 1024 }
}

/// A request's form fields (`application/x-www-form-urlencoded`) or JSON object, read once.
struct Fields: Sendable {
    let values: [String: String]

    subscript(_ key: String) -> String? { values[key] }

    /// The fields any request reads: each must be a string in a JSON body.
    static let known: Set<String> = ["environment", "sha", "comment", "reason", "env", "to", "user", "password", "name", "csrf", "next"]

    /// The body as fields: a form, or a JSON object of strings (a malformed one is a 400 naming the problem).
    static func read(_ request: Request, context: ServerContext) async throws -> Fields {
        var request = request
        let tooLarge = HTTPError(.contentTooLarge, message: "the body is larger than \(context.maxUploadSize / 1024) KiB")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > context.maxUploadSize { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        let body = String(buffer: buffer)
        if request.headers[.contentType]?.hasPrefix("application/json") == true {
            guard let data = body.data(using: .utf8), !body.isEmpty else { return Fields(values: [:]) }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            } catch {
                let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
                throw HTTPError(.badRequest, message: "the body is not valid JSON: \(detail)")
            }
            guard let dictionary = object as? [String: Any] else {
                throw HTTPError(.badRequest, message: "the body must be a JSON object of fields (such as {\"environment\": \"staging\"}), not \(type(of: object))")
            }
            var values: [String: String] = [:]
            for (key, value) in dictionary {
                switch value {
                case let text as String: values[key] = text
                case let number as NSNumber where !known.contains(key): values[key] = number.stringValue
                case is NSNull: if known.contains(key) { throw HTTPError(.badRequest, message: "field '\(key)' must be a string, not null (leave it out instead)") }
                // Fields this request does not read are ignored whatever they hold; the ones it reads are strings.
                default: if known.contains(key) { throw HTTPError(.badRequest, message: "field '\(key)' must be a string") }
                }
            }
            return Fields(values: values)
        }
        var values: [String: String] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = decode(parts[0]), value = parts.count > 1 ? decode(parts[1]) : ""
            values[key] = value
        }
        return Fields(values: values)
    }

    private static func decode(_ text: Substring) -> String {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
    }
}

/// Takes the client's address from `X-Forwarded-For` when the request comes from a trusted proxy (nginx appends the
/// address it saw last); from anyone else the header is ignored.
struct ClientAddress: RouterMiddleware {
    typealias Context = ServerContext
    let trusted: Set<String>

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        var context = context
        if let peer = context.remoteAddress, trusted.contains(peer), let forwarded = request.headers[.init("X-Forwarded-For")!],
            let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty, last.count <= 45
        {
            context.clientAddress = last
        }
        return try await next(request, context)
    }
}
