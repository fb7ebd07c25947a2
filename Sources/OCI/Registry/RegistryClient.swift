import Foundation
import HTTP
import Synchronization

/// A user name and password for a registry (ECR's are `AWS` and the token GetAuthorizationToken hands out).
public struct RegistryCredentials: Sendable, Equatable {
    /// The user name.
    public let username: String
    /// The password or token.
    public let password: String

    /// Credentials.
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// Hands out registry credentials; `refresh` asks for new ones (an expired ECR token).
public protocol RegistryCredentialSource: Sendable {
    /// The credentials to use now (nil: try without).
    func credentials(refresh: Bool) async throws -> RegistryCredentials?
}

/// Fixed credentials, or none.
public struct StaticRegistryCredentials: RegistryCredentialSource {
    let value: RegistryCredentials?

    /// `value` every time.
    public init(_ value: RegistryCredentials?) { self.value = value }

    /// See ``RegistryCredentialSource/credentials(refresh:)``.
    public func credentials(refresh: Bool) async throws -> RegistryCredentials? { value }
}

/// Speaks the OCI distribution API to one repository of one registry: authentication (basic, or the bearer-token
/// flow a `WWW-Authenticate` challenge announces), blob checks, cross-repository mounts, monolithic and chunked
/// uploads, and manifests.
public final class RegistryClient: Sendable {
    /// The registry's base URL (`https://123456789012.dkr.ecr.us-east-1.amazonaws.com`).
    public let base: String
    /// The repository (`sv-user`).
    public let repository: String
    let http: HTTPClient
    private let credentials: any RegistryCredentialSource
    /// The `Authorization` header the registry took last.
    private let authorization = Mutex<String?>(nil)

    /// A client for `repository` at `base`. Plain HTTP is refused unless the host is a loopback address or
    /// `allowInsecure` is set.
    public init(
        base: String, repository: String, credentials: any RegistryCredentialSource, allowInsecure: Bool = false, http: HTTPClient = HTTPClient()
    ) throws(ImageError) {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        if !base.contains("://") { base = "https://\(base)" }
        guard let url = URLComponents(string: base), let host = url.host, ["http", "https"].contains(url.scheme) else {
            throw ImageError("\(base) is not a registry URL (https://HOST[:PORT])")
        }
        if url.scheme == "http" && !allowInsecure && !["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) {
            throw ImageError("\(base) is plain HTTP and not on this machine; use https, or allow insecure registries explicitly")
        }
        self.base = base
        self.repository = repository
        self.credentials = credentials
        self.http = http
    }

    /// The credentials this client would send now (nil: none), for a tool of the user's that talks to the same
    /// registry, such as a builder pushing its layer cache. They are secret: never print them.
    public func currentCredentials() async throws -> RegistryCredentials? {
        try await credentials.credentials(refresh: false)
    }

    /// Whether the registry is reached over plain HTTP (a local one).
    public var isPlainHTTP: Bool { base.hasPrefix("http://") }

    /// The registry's host and port, as image references write it.
    public var host: String {
        let url = URLComponents(string: base)
        return (url?.host ?? base) + (url?.port.map { ":\($0)" } ?? "")
    }

    // MARK: Blobs

    /// Whether the repository (or `other`, a repository of the same registry) has the blob.
    public func hasBlob(_ digest: Digest, in other: String? = nil) async throws(ImageError) -> Bool {
        let response = try await send("HEAD", "/v2/\(other ?? repository)/blobs/\(digest)")
        switch response.status {
        case 200: return true
        case 404: return false
        default: throw failure("checking for blob \(digest)", response)
        }
    }

    /// Asks the registry to mount the blob from `source` (another repository of the same registry, which has it).
    /// True when it did; false when it did not (the upload it may have started is left to expire).
    public func mount(_ digest: Digest, from source: String) async throws(ImageError) -> Bool {
        let response = try await send(
            "POST", "/v2/\(repository)/blobs/uploads/?mount=\(digest)&from=\(source.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? source)",
            body: .bytes([]))
        if response.status == 201 { return true }
        if response.status == 202 || response.status == 404 { return false }
        throw failure("mounting blob \(digest) from \(source)", response)
    }

    /// Uploads a blob: in one PUT when it is at most `chunkSize`, else in PATCHes of `chunkSize` bytes (always to
    /// the latest `Location`), then the closing PUT; checks the digest the registry computed.
    public func upload(_ blob: ImageBlob, chunkSize: UInt64) async throws(ImageError) {
        let start = try await send("POST", "/v2/\(repository)/blobs/uploads/", body: .bytes([]))
        guard start.status == 202, var location = start.header("Location") else {
            throw failure("starting the upload of blob \(blob.digest)", start)
        }
        var closing: HTTPBody = body(of: blob, from: 0, length: blob.size)
        if blob.size > chunkSize {
            var offset: UInt64 = 0
            while offset < blob.size {
                let length = min(chunkSize, blob.size - offset)
                let patch = try await send(
                    "PATCH", location,
                    headers: [
                        ("Content-Type", "application/octet-stream"), ("Content-Range", "\(offset)-\(offset + length - 1)"),
                        ("Content-Length", String(length)),
                    ],
                    body: body(of: blob, from: offset, length: length), long: true)
                guard patch.status == 202, let next = patch.header("Location") else {
                    throw failure("uploading bytes \(offset)-\(offset + length - 1) of blob \(blob.digest)", patch)
                }
                location = next
                offset += length
            }
            closing = .bytes([])
        }
        let separator = location.contains("?") ? "&" : "?"
        let put = try await send(
            "PUT", "\(location)\(separator)digest=\(blob.digest)", headers: [("Content-Type", "application/octet-stream")], body: closing,
            long: true)
        guard put.status == 201 else {
            if put.status == 400, put.text.contains("DIGEST_INVALID") {
                throw ImageError("the registry computed another digest for blob \(blob.digest) than its name says: the image on disk is damaged")
            }
            throw failure("finishing the upload of blob \(blob.digest)", put)
        }
        if let stored = put.header("Docker-Content-Digest"), stored != blob.digest.description {
            throw ImageError("the registry stored blob \(blob.digest) as \(stored): the bytes sent do not match their digest")
        }
    }

    private func body(of blob: ImageBlob, from offset: UInt64, length: UInt64) -> HTTPBody {
        switch blob.source {
        case .file(let url, let start, _): .file(url, offset: start + offset, length: length)
        case .bytes(let bytes): .bytes(Array(bytes[Int(offset)..<Int(offset + length)]))
        }
    }

    /// GETs a small blob (an image config) and checks it against its digest; a redirect (ECR sends blobs from S3)
    /// is followed without the registry's credentials. Larger than `limit` bytes is refused.
    public func smallBlob(_ digest: Digest, limit: Int = 4 << 20) async throws(ImageError) -> [UInt8] {
        var response = try await send("GET", "/v2/\(repository)/blobs/\(digest)")
        if [301, 302, 303, 307, 308].contains(response.status), let location = response.header("Location") {
            let url = location.hasPrefix("/") ? base + location : location
            do {
                response = try await http.send(HTTPRequest(url: url, timeout: 60, connectTimeout: 10))
            } catch {
                throw ImageError("GET \(Self.redact(url)): \(error.message)", transient: error.kind != .request && error.kind != .tls)
            }
        }
        guard response.status == 200 else { throw failure("reading the blob \(digest)", response) }
        guard response.body.count <= limit else { throw ImageError("the blob \(digest) in \(host)/\(repository) is larger than \(limit) bytes") }
        guard Digest(of: response.body) == digest else {
            throw ImageError("the registry's blob \(digest) in \(repository) hashes to \(Digest(of: response.body)); it is not what it claims to be")
        }
        return response.body
    }

    // MARK: Manifests

    /// The digest the tag or digest `reference` points at, or nil when there is none.
    public func manifestDigest(_ reference: String) async throws(ImageError) -> Digest? {
        let response = try await send("HEAD", "/v2/\(repository)/manifests/\(reference)", headers: [("Accept", MediaType.manifests.joined(separator: ", "))])
        switch response.status {
        case 200:
            guard let digest = response.header("Docker-Content-Digest").flatMap(Digest.init) else {
                throw ImageError("the registry answered for \(repository):\(reference) without a Docker-Content-Digest")
            }
            return digest
        case 404: return nil
        default: throw failure("looking up \(repository):\(reference)", response)
        }
    }

    /// GETs the manifest `reference` (a tag, or a digest) names, or nil when there is none. Its bytes are checked
    /// against the digest the registry gives (and the one asked for): a manifest is only ever taken by content.
    public func manifest(_ reference: String) async throws(ImageError) -> ImageManifest? {
        let response = try await send("GET", "/v2/\(repository)/manifests/\(reference)", headers: [("Accept", MediaType.manifests.joined(separator: ", "))])
        switch response.status {
        case 200: break
        case 404: return nil
        default: throw failure("reading the manifest \(repository):\(reference)", response)
        }
        let digest = Digest(of: response.body)
        let claimed = response.header("Docker-Content-Digest") ?? (reference.hasPrefix("sha256:") ? reference : nil)
        for expected in [claimed, reference.hasPrefix("sha256:") ? reference : nil].compactMap({ $0 }) where expected != digest.description {
            throw ImageError("the registry's manifest \(repository):\(reference) hashes to \(digest), not \(expected); it is not what it claims to be")
        }
        let type = response.header("Content-Type").map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }
        let mediaType = type.flatMap { MediaType.manifests.contains($0) ? $0 : nil }
            ?? ((try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["mediaType"] as? String) ?? MediaType.ociManifest
        return ImageManifest(digest: digest, mediaType: mediaType, bytes: response.body)
    }

    /// PUTs `manifest` under `reference` (a tag, or its digest) and checks the digest the registry stored.
    public func putManifest(_ manifest: ImageManifest, as reference: String) async throws(ImageError) {
        let response = try await send(
            "PUT", "/v2/\(repository)/manifests/\(reference)", headers: [("Content-Type", manifest.mediaType)], body: .bytes(manifest.bytes))
        guard response.status == 201 else {
            if response.status == 400 && response.text.contains("BLOB_UNKNOWN") {
                throw ImageError("the registry is missing a blob of manifest \(manifest.digest): \(response.text.prefix(300))")
            }
            throw failure("putting the manifest \(manifest.digest) as \(reference)", response)
        }
        if let stored = response.header("Docker-Content-Digest"), stored != manifest.digest.description {
            throw ImageError("the registry stored manifest \(manifest.digest) as \(stored)")
        }
    }

    // MARK: Sending, with authentication

    /// Sends a request, authenticating when the registry asks: once with what is known, once more with fresh
    /// credentials. A 401 after that is an authentication failure.
    func send(
        _ method: String, _ pathOrURL: String, headers: [(String, String)] = [], body: HTTPBody = .none, long: Bool = false
    ) async throws(ImageError) -> HTTPResponse {
        let url = pathOrURL.hasPrefix("http://") || pathOrURL.hasPrefix("https://") ? pathOrURL : base + pathOrURL
        for attempt in 0..<3 {
            var all = headers.map { (name: $0.0, value: $0.1) }
            let current = authorization.withLock { $0 }
            if let current { all.append(("Authorization", current)) }
            var request = HTTPRequest(method: method, url: url, headers: all, body: body, timeout: long ? 0 : 60, connectTimeout: 10)
            if long { request.stallTimeout = 60 }
            let response: HTTPResponse
            do {
                response = try await http.send(request)
            } catch {
                throw ImageError("\(method) \(Self.redact(url)): \(error.message)", transient: error.kind != .request && error.kind != .tls)
            }
            guard response.status == 401, attempt < 2 else {
                if response.status == 401 {
                    throw ImageError("the registry \(host) refused the credentials for \(repository) (HTTP 401): check the registry login or the ECR permissions")
                }
                return response
            }
            // A 401 with credentials already sent means they expired or were refused: fetch fresh ones.
            try await authenticate(challenge: response.header("WWW-Authenticate"), refresh: current != nil)
        }
        throw ImageError("unreachable")
    }

    private func authenticate(challenge: String?, refresh: Bool) async throws(ImageError) {
        let found: RegistryCredentials?
        do { found = try await credentials.credentials(refresh: refresh) } catch {
            throw ImageError("cannot get credentials for the registry \(host): \(error)")
        }
        guard let challenge else { throw ImageError("the registry \(host) answered 401 without saying how to authenticate") }
        let parsed = Self.parseChallenge(challenge)
        switch parsed.scheme.lowercased() {
        case "basic":
            guard let found else {
                throw ImageError("the registry \(host) wants a user name and password, and none were given (a registry secret, or ECR)")
            }
            authorization.withLock { $0 = "Basic " + Data("\(found.username):\(found.password)".utf8).base64EncodedString() }
        case "bearer":
            guard let realm = parsed.parameters["realm"] else { throw ImageError("the registry \(host) asks for a bearer token without a realm") }
            var components = URLComponents(string: realm)
            var query = components?.queryItems ?? []
            if let service = parsed.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: parsed.parameters["scope"] ?? "repository:\(repository):pull,push"))
            components?.queryItems = query
            guard let url = components?.string else { throw ImageError("the registry \(host) names an unusable token realm \(realm)") }
            var headers: [(name: String, value: String)] = []
            if let found {
                headers.append(("Authorization", "Basic " + Data("\(found.username):\(found.password)".utf8).base64EncodedString()))
            }
            let response: HTTPResponse
            do { response = try await http.send(HTTPRequest(url: url, headers: headers)) } catch {
                throw ImageError("cannot reach the token service of \(host): \(error.message)", transient: true)
            }
            guard response.status == 200,
                let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                let token = object["token"] as? String ?? object["access_token"] as? String
            else {
                throw ImageError("the token service of \(host) refused a token for \(repository) (HTTP \(response.status))")
            }
            authorization.withLock { $0 = "Bearer \(token)" }
        default:
            throw ImageError("the registry \(host) asks for \(parsed.scheme) authentication, which pipeline does not speak")
        }
    }

    /// `Bearer realm="https://auth",service="registry",scope="repository:x:pull"` → scheme and parameters.
    static func parseChallenge(_ header: String) -> (scheme: String, parameters: [String: String]) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, [:]) }
        var parameters: [String: String] = [:]
        var rest = trimmed[trimmed.index(after: space)...]
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,"))
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let close = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<close])
                rest = close < rest.endIndex ? rest[rest.index(after: close)...] : rest[rest.endIndex...]
            } else {
                let comma = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<comma])
                rest = rest[comma...]
            }
            parameters[key.lowercased()] = value
            rest = rest.drop { $0 == "," || $0 == " " }
        }
        return (String(trimmed[..<space]), parameters)
    }

    private func failure(_ what: String, _ response: HTTPResponse) -> ImageError {
        let detail = response.text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)
        return ImageError(
            "\(what) in \(host)/\(repository): HTTP \(response.status)\(detail.isEmpty ? "" : ": \(detail)")",
            transient: response.status >= 500 || response.status == 429)
    }

    /// A URL without its query (upload URLs carry state tokens).
    static func redact(_ url: String) -> String {
        url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
    }
}
