import Foundation
import Hashing

/// An OpenSSH known-hosts file: plain host lists and hashed (`|1|salt|hash`) entries.
struct KnownHosts {
    let lines: [Substring]

    init(path: String) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
    }

    /// Whether `key` (base64) is a known key of `host` (at `port`, when not 22).
    func contains(host: String, port: Int?, key: String) -> Bool {
        let name = port.map { $0 == 22 ? host : "[\(host)]:\($0)" } ?? host
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, !fields[0].hasPrefix("@"), fields[2] == key else { continue }
            for pattern in fields[0].split(separator: ",") where Self.matches(String(pattern), name: name) {
                return true
            }
        }
        return false
    }

    private static func matches(_ pattern: String, name: String) -> Bool {
        guard pattern.hasPrefix("|1|") else { return pattern == name }
        let parts = pattern.split(separator: "|")
        guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])) else { return false }
        let hash = HMACSHA1.authenticate(Array(name.utf8), key: Array(salt))
        return Data(hash).base64EncodedString() == parts[2]
    }
}
