import COpenSSL

/// A message digest through OpenSSL's libcrypto, fed in pieces.
public class Digest {
    private let context: OpaquePointer

    init(_ algorithm: OpaquePointer?, name: String) {
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        self.context = context
        guard EVP_DigestInit_ex(context, algorithm, nil) == 1 else {
            fatalError("EVP_DigestInit_ex(\(name)) failed: \(OpenSSLError.last())")
        }
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Adds bytes to the digest.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Adds bytes to the digest.
    public func update(_ bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    /// Ends the digest and returns its bytes; the object must not be used afterwards.
    public func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return Array(out.prefix(Int(length)))
    }
}

/// SHA-256.
public final class SHA256: Digest {
    /// Starts a new digest.
    public init() {
        super.init(EVP_sha256(), name: "sha256")
    }

    /// The SHA-256 of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        let digest = SHA256()
        digest.update(bytes)
        return digest.finish()
    }

    /// The SHA-256 of `text`'s UTF-8 bytes, as lowercase hex.
    public static func hex(_ text: String) -> String {
        hash(Array(text.utf8)).hexString
    }
}

/// SHA-1, for git object ids (OpenSSL's uses the CPU's SHA instructions where there are some).
public final class SHA1: Digest {
    /// Starts a new digest.
    public init() {
        super.init(EVP_sha1(), name: "sha1")
    }
}

/// HMAC-SHA256 through OpenSSL's libcrypto.
public enum HMACSHA256 {
    /// The HMAC-SHA256 of `message` under `key`.
    public static func authenticate(_ message: some Sequence<UInt8>, key: some Sequence<UInt8>) -> [UInt8] {
        hmac(EVP_sha256(), message: Array(message), key: Array(key))
    }
}

/// HMAC-SHA1 through OpenSSL's libcrypto; OpenSSH's hashed known-hosts entries use it.
public enum HMACSHA1 {
    /// The HMAC-SHA1 of `message` under `key`.
    public static func authenticate(_ message: some Sequence<UInt8>, key: some Sequence<UInt8>) -> [UInt8] {
        hmac(EVP_sha1(), message: Array(message), key: Array(key))
    }
}

private func hmac(_ digest: OpaquePointer?, message: [UInt8], key: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    let result = key.withUnsafeBytes { k in
        message.withUnsafeBytes { m in
            HMAC(digest, k.baseAddress, Int32(k.count), m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count, &out, &length)
        }
    }
    guard result != nil else { fatalError("HMAC failed: \(OpenSSLError.last())") }
    return Array(out.prefix(Int(length)))
}

/// The last error on OpenSSL's error queue, as text.
enum OpenSSLError {
    static func last() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "no error on the OpenSSL queue" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hexadecimal.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

