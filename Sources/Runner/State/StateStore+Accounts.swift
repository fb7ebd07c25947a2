import Foundation
import Hashing

/// What a server user may do. Each role includes the ones before it.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Sees everything a page shows; changes nothing.
    case viewer
    /// Starts, cancels and resumes runs; rolls back environments without an approval gate.
    case deployer
    /// Everything, including users, tokens and rollbacks of gated environments.
    case admin

    public static func < (a: Role, b: Role) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// A server user.
public struct UserRecord: Sendable, Equatable, Codable {
    /// The name people and gates know them by (a gate's `approvers:` names these).
    public let name: String
    /// What they may do.
    public let role: Role
    /// When the account was made.
    public let createdAt: Date
}

/// How a person was known when they acted, for the audit: verified by the server (a signed-in user, an API token,
/// the SSO proxy's header) or claimed on a local terminal (the operating-system user or an identity variable).
public enum IdentityKind: String, Sendable, Codable, CaseIterable {
    /// A local account signed in with its password.
    case serverUser = "server-user"
    /// An API token.
    case token
    /// The trusted identity header of the configured SSO proxy.
    case proxy
    /// The local CLI's operating-system user or identity variable: not verified.
    case local
    /// A forge's webhook delivery, verified by its signature (the webhook secret).
    case webhook

    /// Whether the server verified it.
    public var isVerified: Bool { self != .local }
}

/// One line of the audit.
public struct AuditEntry: Sendable, Equatable, Codable {
    /// Its number (the audit only grows).
    public let id: Int
    /// When.
    public let at: Date
    /// Who.
    public let actor: String
    /// How they were known.
    public let identity: IdentityKind
    /// What they did (`sign-in`, `run.started`, `approved`, `rejected`, `cancelled`, `rolled-back`, `token.created`, ...).
    public let action: String
    /// What it was about (`run 12`, `user alice`, ...).
    public let target: String?
    /// More, in one line (a comment, a reason).
    public let detail: String?
    /// The client's address, for requests to the server.
    public let address: String?
}

/// A user's API token as listed (its secret is never kept).
public struct TokenRecord: Sendable, Equatable, Codable {
    public let id: Int
    public let user: String
    public let name: String
    public let createdAt: Date
    public let lastUsedAt: Date?
    public let revokedAt: Date?
}

/// A name, role or password that cannot be used, with what to do instead.
public struct AccountError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension StateStore {
    /// User names: what gates' `approvers:` lists can name and pages can show without surprise.
    public static func checkUserName(_ name: String) throws(AccountError) {
        let allowed = name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-@".unicodeScalars.contains($0)) }
        guard !name.isEmpty, name.count <= 64, allowed, name.first!.isLetter || name.first!.isNumber else {
            throw AccountError("user name '\(name)' is not allowed: use 1 to 64 ASCII letters, digits, '.', '_', '-' or '@', starting with a letter or digit")
        }
    }

    /// At least 12 characters, not counting spaces at either end, and not only spaces.
    static func checkPassword(_ password: String) throws(AccountError) {
        guard password.trimmingCharacters(in: .whitespaces).count >= 12 else {
            throw AccountError("the password is too short: use at least 12 characters (spaces at its ends do not count)")
        }
    }

    /// Adds user `name` with `role` and a password (kept under scrypt); refuses an existing name.
    public func addUser(_ name: String, role: Role, password: String) throws -> UserRecord {
        try Self.checkUserName(name)
        try Self.checkPassword(password)
        let hash = try PasswordHash.make(password)
        return try database.transaction {
            guard try database.query("SELECT name FROM users WHERE name = ?", [.text(name)]).isEmpty else {
                throw AccountError(
                    try user(name) == nil
                        ? "user '\(name)' was removed; a removed name is not given to someone else (pick another)"
                        : "user '\(name)' exists already; change its role with `pipeline users set-role`, its password with `pipeline users set-password`")
            }
            try database.execute(
                "INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)", [.text(name), .text(role.rawValue), .text(hash), .real(now())])
            return try user(name)!
        }
    }

    /// Sets the password of an existing user, ending their sessions.
    public func setPassword(_ name: String, password: String) throws {
        try Self.checkPassword(password)
        let hash = try PasswordHash.make(password)
        try database.transaction {
            guard try user(name) != nil else { throw AccountError("there is no user '\(name)'; add one with `pipeline users add \(name) --role ROLE`") }
            try database.execute("UPDATE users SET password = ? WHERE name = ?", [.text(hash), .text(name)])
            try database.execute("DELETE FROM sessions WHERE user = ?", [.text(name)])
        }
    }

    /// Sets the role of an existing user.
    public func setRole(_ name: String, role: Role) throws {
        try database.transaction {
            guard try user(name) != nil else { throw AccountError("there is no user '\(name)'; add one with `pipeline users add \(name) --role ROLE`") }
            try database.execute("UPDATE users SET role = ? WHERE name = ?", [.text(role.rawValue), .text(name)])
        }
    }

    /// The user `name`, if there is one (and it is not removed).
    public func user(_ name: String) throws -> UserRecord? {
        try database.query("SELECT name, role, created_at FROM users WHERE name = ? AND disabled_at IS NULL", [.text(name)]).first.map(Self.user)
    }

    /// Every user, by name (not the removed ones).
    public func users() throws -> [UserRecord] {
        try database.query("SELECT name, role, created_at FROM users WHERE disabled_at IS NULL ORDER BY name").map(Self.user)
    }

    /// Removes user `name`: their sessions end, their tokens are revoked, and they can sign in no more. The record
    /// stays (what they did stays in the audit and the runs), so the name cannot be taken by someone else.
    public func removeUser(_ name: String) throws {
        try database.transaction {
            guard try user(name) != nil else { throw AccountError("there is no user '\(name)'; `pipeline users list` shows them") }
            try database.execute("UPDATE users SET disabled_at = ? WHERE name = ?", [.real(now()), .text(name)])
            try database.execute("DELETE FROM sessions WHERE user = ?", [.text(name)])
            try database.execute("UPDATE tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL", [.real(now()), .text(name)])
        }
    }

    /// The user whose password is `password`, or nil (an unknown name costs the same scrypt work as a wrong password).
    public func authenticate(_ name: String, password: String) throws -> UserRecord? {
        let row = try database.query("SELECT name, role, created_at, password FROM users WHERE name = ? AND disabled_at IS NULL", [.text(name)]).first
        let stored = row?["password"].string ?? Self.decoyHash
        guard PasswordHash.verify(password, against: stored), let row else { return nil }
        return try Self.user(row)
    }

    /// Spent on unknown names so that their answer takes as long as a wrong password's.
    private static let decoyHash = (try? PasswordHash.make(RandomBytes.token())) ?? ""  // a failure here only removes the timing cover

    // MARK: Tokens

    /// Makes an API token for `user`, kept hashed; the token itself is returned once and never again.
    public func createToken(user: String, name: String) throws -> (TokenRecord, secret: String) {
        let secret = "pl_" + RandomBytes.token(32)
        return try database.transaction {
            guard try self.user(user) != nil else { throw AccountError("there is no user '\(user)'; add one with `pipeline users add \(user) --role ROLE`") }
            let rows = try database.query(
                "INSERT INTO tokens (user, name, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                [.text(user), .text(name), .text(SHA256.hex(secret)), .real(now())])
            let id = rows.first?["id"].int ?? 0
            return (try tokens(user: user).first { $0.id == id }!, secret)
        }
    }

    /// The user a token belongs to, when it is known and not revoked (tokens are looked up by their SHA-256).
    public func userForToken(_ secret: String) throws -> UserRecord? {
        guard secret.hasPrefix("pl_"), secret.count < 200 else { return nil }
        let rows = try database.query(
            "SELECT users.name, users.role, users.created_at, tokens.id FROM tokens JOIN users ON users.name = tokens.user WHERE tokens.hash = ? AND tokens.revoked_at IS NULL AND users.disabled_at IS NULL",
            [.text(SHA256.hex(secret))])
        guard let row = rows.first else { return nil }
        // When a token was last used, to the minute: a write per request would make every read wait on writers.
        try database.execute(
            "UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)", [.real(now()), row["id"], .real(now() - 60)])
        return try Self.user(row)
    }

    /// Tokens, of one user or all.
    public func tokens(user: String? = nil) throws -> [TokenRecord] {
        let rows = try database.query(
            "SELECT * FROM tokens \(user == nil ? "" : "WHERE user = ?") ORDER BY id", user.map { [.text($0)] } ?? [])
        return rows.map { row in
            TokenRecord(
                id: row["id"].int ?? 0, user: row["user"].string ?? "", name: row["name"].string ?? "",
                createdAt: Date(timeIntervalSince1970: row["created_at"].double ?? 0),
                lastUsedAt: row["last_used_at"].double.map(Date.init(timeIntervalSince1970:)),
                revokedAt: row["revoked_at"].double.map(Date.init(timeIntervalSince1970:)))
        }
    }

    /// Revokes token `id`; false when there is no such live token.
    public func revokeToken(_ id: Int) throws -> Bool {
        try database.transaction {
            guard try tokens().contains(where: { $0.id == id && $0.revokedAt == nil }) else { return false }
            try database.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", [.real(now()), .integer(Int64(id))])
            return true
        }
    }

    // MARK: Sessions

    /// Starts a sign-in session for `user`; returns its id (for the cookie) and CSRF token. Only the id's SHA-256 is kept.
    public func createSession(user: String, lifetime: TimeInterval) throws -> (id: String, csrf: String) {
        let id = RandomBytes.token(32), csrf = RandomBytes.token(32)
        try database.execute("DELETE FROM sessions WHERE expires_at < ?", [.real(now())])
        try database.execute(
            "INSERT INTO sessions (hash, user, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            [.text(SHA256.hex(id)), .text(user), .text(csrf), .real(now()), .real(now() + lifetime)])
        return (id, csrf)
    }

    /// The user and CSRF token of a live session.
    public func session(_ id: String) throws -> (user: UserRecord, csrf: String)? {
        guard id.count < 200 else { return nil }
        let rows = try database.query(
            "SELECT users.name, users.role, users.created_at, sessions.csrf FROM sessions JOIN users ON users.name = sessions.user WHERE sessions.hash = ? AND sessions.expires_at > ? AND users.disabled_at IS NULL",
            [.text(SHA256.hex(id)), .real(now())])
        guard let row = rows.first, let csrf = row["csrf"].string else { return nil }
        return (try Self.user(row), csrf)
    }

    /// Ends a session.
    public func endSession(_ id: String) throws {
        try database.execute("DELETE FROM sessions WHERE hash = ?", [.text(SHA256.hex(id))])
    }

    // MARK: Audit

    /// Appends to the audit (the table refuses updates and deletes). Callers mask what they pass.
    @discardableResult
    public func audit(
        actor: String, identity: IdentityKind, action: String, target: String? = nil, detail: String? = nil, address: String? = nil
    ) throws -> Int {
        let rows = try database.query(
            "INSERT INTO audit (at, actor, identity, action, target, detail, address) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [.real(now()), .text(actor), .text(identity.rawValue), .text(action), target.map(SQLValue.text) ?? .null,
             detail.map(SQLValue.text) ?? .null, address.map(SQLValue.text) ?? .null])
        return rows.first?["id"].int ?? 0
    }

    /// Audit entries after `after` (oldest first), at most `limit`; or the newest `limit` when `newestFirst`.
    public func auditEntries(after: Int = 0, limit: Int = 1000, newestFirst: Bool = false) throws -> [AuditEntry] {
        let rows = try database.query(
            "SELECT * FROM audit WHERE id > ? ORDER BY id \(newestFirst ? "DESC" : "ASC") LIMIT ?", [.integer(Int64(after)), .integer(Int64(limit))])
        return try rows.map { row throws(DatabaseError) in
            AuditEntry(
                id: row["id"].int ?? 0, at: Date(timeIntervalSince1970: row["at"].double ?? 0), actor: row["actor"].string ?? "",
                identity: try known(IdentityKind.self, row["identity"], of: "audit entry \(row["id"].int ?? 0)"),
                action: row["action"].string ?? "", target: row["target"].string, detail: row["detail"].string, address: row["address"].string)
        }
    }

    private static func user(_ row: Row) throws(DatabaseError) -> UserRecord {
        UserRecord(
            name: row["name"].string ?? "", role: try known(Role.self, row["role"], of: "user \(row["name"].string ?? "")"),
            createdAt: Date(timeIntervalSince1970: row["created_at"].double ?? 0))
    }
}
