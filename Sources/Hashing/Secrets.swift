import COpenSSL
import Foundation

/// Random bytes from OpenSSL's CSPRNG, for session ids, tokens, salts and CSRF tokens.
public enum RandomBytes {
    /// `count` random bytes; traps if the generator cannot be seeded (nothing secret may be made without it).
    public static func make(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { fatalError("OpenSSL's random generator failed") }
        return bytes
    }

    /// `count` random bytes as URL-safe base64 without padding.
    public static func token(_ count: Int = 32) -> String { Base64URL.encode(make(count)) }
}

/// URL-safe base64 without padding (RFC 4648 §5).
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Compares secrets in time that depends only on their lengths (OpenSSL's `CRYPTO_memcmp`).
public enum ConstantTime {
    public static func equal(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        return left.withUnsafeBytes { l in right.withUnsafeBytes { r in CRYPTO_memcmp(l.baseAddress, r.baseAddress, left.count) == 0 } }
    }
}

/// Passwords kept under scrypt (RFC 7914), a memory-hard KDF: `scrypt$N$r$p$SALT$HASH` (base64url).
public enum PasswordHash {
    /// The cost used for new passwords: N = 2^15, r = 8, p = 1, about 32 MiB and 0.1 s per check (OWASP's
    /// recommended minimum for scrypt is N = 2^17 with r = 8, p = 1 or an equivalent N = 2^15 with larger p; a
    /// lower N with the same memory bound keeps sign-in usable on two cores).
    public static let defaultCost = (n: UInt64(1) << 15, r: UInt64(8), p: UInt64(1))

    /// The kept form of `password`.
    public static func make(_ password: String, cost: (n: UInt64, r: UInt64, p: UInt64) = defaultCost) throws -> String {
        let salt = RandomBytes.make(16)
        let hash = try derive(password, salt: salt, n: cost.n, r: cost.r, p: cost.p)
        return "scrypt$\(cost.n)$\(cost.r)$\(cost.p)$\(Base64URL.encode(salt))$\(Base64URL.encode(hash))"
    }

    /// Whether `password` matches `stored` (compared in constant time); false for a malformed stored form.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let n = UInt64(parts[1]), let r = UInt64(parts[2]), let p = UInt64(parts[3]),
            let salt = decode(parts[4]), let expected = decode(parts[5]),
            let hash = try? derive(password, salt: salt, n: n, r: r, p: p, length: expected.count)  // malformed cost: no match
        else { return false }
        return ConstantTime.equal(Base64URL.encode(hash), Base64URL.encode(expected))
    }

    static func derive(_ password: String, salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, length: Int = 32) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let bytes = Array(password.utf8)
        let ok = EVP_PBE_scrypt(bytes, bytes.count, salt, salt.count, n, r, p, 256 << 20, &out, length)
        guard ok == 1 else { throw PasswordHashError(description: "scrypt failed (N=\(n), r=\(r), p=\(p))") }
        return out
    }

    private static func decode(_ text: String) -> [UInt8]? {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        return Data(base64Encoded: base).map { Array($0) }
    }
}

/// scrypt could not run (its parameters are out of range or memory ran out).
public struct PasswordHashError: Error, CustomStringConvertible {
    public let description: String
}
