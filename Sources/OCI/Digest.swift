import Hashing

/// A content digest as the OCI distribution spec writes it: `sha256:` and 64 lowercase hex digits.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    /// The algorithm (always `sha256` here).
    public let algorithm: String
    /// The hex-encoded hash.
    public let hex: String

    /// Parses `sha256:...`; `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256", parts[1].count == 64,
            parts[1].allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        else { return nil }
        algorithm = "sha256"
        hex = String(parts[1])
    }

    /// The digest of `bytes`.
    public init(of bytes: some Sequence<UInt8>) {
        algorithm = "sha256"
        hex = SHA256.hash(bytes).hexString
    }

    /// The digest whose SHA-256 is `hash`.
    public init(hashed hash: [UInt8]) {
        algorithm = "sha256"
        hex = hash.hexString
    }

    /// `sha256:...`
    public var description: String { "\(algorithm):\(hex)" }
}
