import Foundation
import Hashing

/// AWS credentials: an access key, its secret, and a session token for temporary credentials.
public struct AWSCredentials: Sendable, Equatable {
    /// The access key id.
    public let accessKeyID: String
    /// The secret access key.
    public let secretAccessKey: String
    /// The session token of temporary credentials.
    public let sessionToken: String?
    /// When temporary credentials stop working (nil: they do not expire).
    public let expiration: Date?

    /// Credentials.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }
}

/// An HTTP request as SigV4 sees it.
public struct SigningRequest: Sendable, Equatable {
    /// `GET`, `POST`, ...
    public var method: String
    /// The path as sent, starting with `/`.
    public var path: String
    /// The query parameters as sent (percent-encoded or not), in order.
    public var query: [(name: String, value: String)]
    /// The headers, in order; a name may appear more than once.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: [UInt8]

    /// A request.
    public init(
        method: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    public static func == (lhs: SigningRequest, rhs: SigningRequest) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.query.elementsEqual(rhs.query, by: ==)
            && lhs.headers.elementsEqual(rhs.headers, by: ==) && lhs.body == rhs.body
    }
}

/// AWS Signature Version 4, with SHA-256 and HMAC from OpenSSL's libcrypto.
public struct SigV4: Sendable {
    /// The signing name of the service (`ecs`, `route53`, ...).
    public let service: String
    /// The region (`us-east-1`).
    public let region: String
    /// Who signs.
    public let credentials: AWSCredentials
    /// When the request is signed.
    public let date: Date
    /// Remove `.` and `..` segments and repeated slashes from the path before signing (every service but S3).
    public var normalizePath = true
    /// Send and sign `x-amz-content-sha256` with the body's hash.
    public var signBody = false
    /// Add the session token after signing, unsigned (a few services want it so).
    public var omitSessionToken = false

    /// A signer for `service` in `region`.
    public init(service: String, region: String, credentials: AWSCredentials, date: Date) {
        self.service = service
        self.region = region
        self.credentials = credentials
        self.date = date
    }

    static let algorithm = "AWS4-HMAC-SHA256"

    /// `20150830T123600Z`.
    public var timestamp: String { Self.utc(date, dateOnly: false) }
    /// `20150830/us-east-1/service/aws4_request`.
    public var scope: String { "\(Self.utc(date, dateOnly: true))/\(region)/\(service)/aws4_request" }

    // MARK: Signing with headers

    /// The headers to add to `request` so that it is signed: `X-Amz-Date`, `x-amz-content-sha256` (with
    /// `signBody`), `X-Amz-Security-Token` (with a session token) and `Authorization`.
    public func signatureHeaders(for request: SigningRequest) -> [(name: String, value: String)] {
        let (signed, added) = headersToSign(request)
        let signature = sign(stringToSign(canonicalRequest(signed)))
        let names = signedHeaderNames(signed)
        var result = added
        if omitSessionToken, let token = credentials.sessionToken { result.append(("X-Amz-Security-Token", token)) }
        result.append((
            "Authorization",
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(names), Signature=\(signature)"
        ))
        return result
    }

    /// The request as signed with headers: its own headers plus the ones the signature covers.
    func headersToSign(_ request: SigningRequest) -> (SigningRequest, added: [(name: String, value: String)]) {
        var added: [(name: String, value: String)] = [("X-Amz-Date", timestamp)]
        if signBody { added.append(("x-amz-content-sha256", SHA256.hash(request.body).hexString)) }
        if !omitSessionToken, let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        var signed = request
        signed.headers += added
        return (signed, added)
    }

    // MARK: Signing with the query string

    /// The query parameters that presign `request` for `expires` seconds (`X-Amz-Algorithm`, ...,
    /// `X-Amz-Signature`), to append to its query.
    public func presignedQuery(for request: SigningRequest, expires: Int) -> [(name: String, value: String)] {
        var parameters = presignParameters(for: request, expires: expires)
        let signature = sign(stringToSign(canonicalRequest(presigning(request, with: parameters))))
        if omitSessionToken, let token = credentials.sessionToken { parameters.append(("X-Amz-Security-Token", token)) }
        parameters.append(("X-Amz-Signature", signature))
        return parameters
    }

    /// The parameters a presigned request signs (all but the signature).
    func presignParameters(for request: SigningRequest, expires: Int) -> [(name: String, value: String)] {
        var parameters: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", Self.algorithm), ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"),
            ("X-Amz-Date", timestamp), ("X-Amz-Expires", String(expires)),
        ]
        if !omitSessionToken, let token = credentials.sessionToken { parameters.append(("X-Amz-Security-Token", token)) }
        parameters.append(("X-Amz-SignedHeaders", signedHeaderNames(request)))
        return parameters
    }

    /// The request as a presigned request signs it (the body's hash is signed, not sent as a header).
    func presigning(_ request: SigningRequest, with parameters: [(name: String, value: String)]) -> SigningRequest {
        var signed = request
        signed.query += parameters.map { (Self.encode($0.name), Self.encode($0.value)) }
        return signed
    }

    // MARK: The pieces

    /// The canonical request of a request that already carries every header and parameter it signs.
    public func canonicalRequest(_ request: SigningRequest) -> String {
        let headers = canonicalHeaders(request)
        let payload = request.headers.first { $0.name.lowercased() == "x-amz-content-sha256" }?.value
            ?? SHA256.hash(request.body).hexString
        return [
            request.method, canonicalPath(request.path), canonicalQuery(request.query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(), headers.map(\.name).joined(separator: ";"), payload,
        ].joined(separator: "\n")
    }

    /// The string to sign for a canonical request.
    public func stringToSign(_ canonicalRequest: String) -> String {
        [Self.algorithm, timestamp, scope, SHA256.hex(canonicalRequest)].joined(separator: "\n")
    }

    /// The hex signature of a string to sign.
    public func sign(_ stringToSign: String) -> String {
        var key = HMACSHA256.authenticate(Array(Self.utc(date, dateOnly: true).utf8), key: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [region, service, "aws4_request"] { key = HMACSHA256.authenticate(Array(part.utf8), key: key) }
        return HMACSHA256.authenticate(Array(stringToSign.utf8), key: key).hexString
    }

    func signedHeaderNames(_ request: SigningRequest) -> String {
        canonicalHeaders(request).map(\.name).joined(separator: ";")
    }

    /// Lower-case names, sorted; values trimmed with inner runs of spaces folded; repeated names joined by commas.
    func canonicalHeaders(_ request: SigningRequest) -> [(name: String, value: String)] {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for header in request.headers {
            let name = header.name.lowercased()
            if values[name] == nil { order.append(name) }
            values[name, default: []].append(Self.foldSpaces(header.value))
        }
        return order.sorted().map { ($0, values[$0]!.joined(separator: ",")) }
    }

    func canonicalPath(_ path: String) -> String {
        var raw = path.isEmpty ? "/" : path
        if normalizePath { raw = Self.normalize(raw) }
        return raw.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(String($0)) }
            .joined(separator: "/")
    }

    func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (Self.encode(Self.decode($0.name)), Self.encode(Self.decode($0.value))) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    // MARK: Text helpers

    /// RFC 3986 dot-segment removal, with empty segments dropped; a trailing slash is kept.
    static func normalize(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        let last = path.split(separator: "/", omittingEmptySubsequences: false).last
        let trailing = path.hasSuffix("/") || last == "." || last == ".."
        let joined = "/" + segments.joined(separator: "/")
        return trailing && !segments.isEmpty ? joined + "/" : joined
    }

    /// Percent-encodes every byte but the unreserved characters (`A-Z a-z 0-9 - _ . ~`).
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func decode(_ text: String) -> String {
        text.removingPercentEncoding ?? text
    }

    static func foldSpaces(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// `date` in UTC as SigV4 writes it: `yyyyMMdd'T'HHmmss'Z'`, or `yyyyMMdd` alone; seconds truncated. Written
    /// out by hand: a DateFormatter loads ICU's calendar data, which cost every stage process (a new one for each
    /// stage) several milliseconds on its first signature.
    static func utc(_ date: Date, dateOnly: Bool) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))"
        return dateOnly ? day : "\(day)T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }
}
