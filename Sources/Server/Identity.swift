import Foundation
import Hashing
import HTTPTypes
import Hummingbird
import Runner
import StageContract
import Synchronization

/// Who is asking, verified: a signed-in user (session cookie), an API token (`Authorization: Bearer`), or the SSO
/// proxy's header from a trusted proxy address.
struct Caller: Sendable {
    let user: UserRecord
    let kind: IdentityKind
    /// The CSRF token forms must carry (requests carried by ambient credentials: cookies and the proxy's header).
    let csrf: String?
    /// The session id, for signing out.
    let session: String?

    var name: String { user.name }
    func may(_ role: Role) -> Bool { user.role >= role }
}

/// Finds the caller of a request and checks what state-changing requests must carry.
struct Identity: Sendable {
    static let sessionCookie = "pipeline_session"

    let store: StateStore
    let settings: ServerSettings
    /// Signs CSRF tokens of proxy-header callers (who have no session row).
    let key: [UInt8]

    /// The caller, or nil when the request carries no (valid) identity.
    func caller(_ request: Request, context: ServerContext) throws -> Caller? {
        // A bearer token (the scheme is case-insensitive); other schemes (a proxy's Basic auth) are not ours.
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") {
            guard let user = try store.userForToken(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)) else {
                throw HTTPError(.unauthorized, message: "the API token is not valid (revoked, or not one of this server's); make one with `pipeline tokens create`")
            }
            return Caller(user: user, kind: .token, csrf: nil, session: nil)
        }
        if let name = settings.identityHeader, let value = request.headers[HTTPField.Name(name)!], !value.isEmpty {
            guard let address = context.remoteAddress, settings.trustedProxies.contains(address) else {
                throw HTTPError(.forbidden, message: "the identity header \(name) is accepted from the configured proxies only")
            }
            guard let user = try store.user(value) else {
                throw HTTPError(.forbidden, message: "\(value) is signed in at the proxy but is not a user of this server; an admin adds them with `pipeline users add`")
            }
            return Caller(user: user, kind: .proxy, csrf: proxyCSRF(user.name), session: nil)
        }
        if let id = request.cookies[Self.sessionCookie]?.value, let (user, csrf) = try store.session(id) {
            return Caller(user: user, kind: .serverUser, csrf: csrf, session: id)
        }
        return nil
    }

    /// The caller of a state-changing request, who must hold `role`: 401 signed out, 403 lacking the role or (for
    /// ambient credentials) without the form's CSRF token or from another origin.
    func requireForChange(_ request: Request, context: ServerContext, fields: Fields, role: Role) throws -> Caller {
        guard let caller = try caller(request, context: context) else {
            throw HTTPError(.unauthorized, message: "sign in first (a session, or `Authorization: Bearer TOKEN`)")
        }
        if let expected = caller.csrf {
            let given = fields["csrf"] ?? request.headers[HTTPField.Name("X-CSRF-Token")!] ?? ""
            guard ConstantTime.equal(given, expected) else {
                throw HTTPError(.forbidden, message: "the form's CSRF token is missing or wrong; reload the page and try again")
            }
            if let origin = request.headers[.origin], !sameOrigin(origin, request: request) {
                throw HTTPError(.forbidden, message: "the request comes from another site (\(origin))")
            }
        }
        guard caller.may(role) else {
            throw HTTPError(.forbidden, message: "\(caller.name) is a \(caller.user.role.rawValue); this needs a \(role.rawValue)")
        }
        return caller
    }

    func sameOrigin(_ origin: String, request: Request) -> Bool {
        if let url = settings.publicURL, let scheme = url.scheme, let host = url.host {
            let port = url.port.map { ":\($0)" } ?? ""
            if origin == "\(scheme)://\(host)\(port)" { return true }
        }
        guard let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }

    private func proxyCSRF(_ user: String) -> String {
        Base64URL.encode(HMACSHA256.authenticate(Array("csrf:\(user)".utf8), key: key))
    }

    /// This server's signing key, kept owner-only in the state folder (made on first use).
    static func key(home: URL) throws -> [UInt8] {
        let file = home.appending(path: "server.key")
        if let data = FileManager.default.contents(atPath: file.path), data.count == 32 { return Array(data) }
        let key = RandomBytes.make(32)
        try OwnerOnly.write(Data(key), to: file)
        return key
    }
}

/// Failed sign-ins allowed in 5 minutes, then 429 until they age out: 5 for one user name from one address, 20 from
/// one address (guessing at many users), 50 for one user name from anywhere (guessing from many addresses). A
/// success clears only its own address-and-user count, so signing in as oneself buys no more guesses at others; a
/// real user elsewhere is locked out only by a distributed attack of 50 guesses in 5 minutes. (Kept in memory: a
/// restart of the server starts the counts again.)
final class SignInLimiter: Sendable {
    private let failures = Mutex<[String: [Date]]>([:])
    let window: TimeInterval = 300

    /// The counts a sign-in of `user` from `address` is held to.
    static func keys(address: String?, user: String) -> [String] {
        let address = address ?? "?"
        return ["pair:\(address) \(user)", "address:\(address)", "user:\(user)"]
    }

    private static func limit(_ key: String) -> Int {
        key.hasPrefix("pair:") ? 5 : key.hasPrefix("address:") ? 20 : 50
    }

    /// Seconds to wait before another attempt for any of `keys`, or nil when one may be made now.
    func retryAfter(_ keys: [String], now: Date = Date()) -> Int? {
        failures.withLock { table in
            var wait: TimeInterval = 0
            for key in keys {
                let recent = (table[key] ?? []).filter { now.timeIntervalSince($0) < window }
                table[key] = recent
                if recent.count >= Self.limit(key), let oldest = recent.first { wait = max(wait, window - now.timeIntervalSince(oldest)) }
            }
            return wait > 0 ? Int(wait.rounded(.up)) : nil
        }
    }

    func failed(_ keys: [String], now: Date = Date()) {
        failures.withLock { table in for key in keys { table[key, default: []].append(now) } }
    }

    func succeeded(_ keys: [String]) {
        failures.withLock { table in for key in keys where key.hasPrefix("pair:") { table[key] = nil } }
    }
}
