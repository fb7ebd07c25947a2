import Foundation

/// The byte strings under which a secret value can show up in output: as it is, line by line, JSON-escaped,
/// URL-encoded, and base64-encoded at each of the three alignments it can have inside a longer base64 text.
enum SecretForms {
    /// Shorter strings are not masked: masking them would blank out ordinary text.
    static let minimumLength = 4

    static func of(_ secret: String) -> [[UInt8]] {
        var texts: [String] = [secret]
        let lines = secret.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        if lines.count > 1 { texts += lines }
        var forms: [[UInt8]] = []
        for text in texts {
            forms.append(Array(text.utf8))
            forms.append(Array(jsonEscaped(text, slash: false).utf8))
            forms.append(Array(jsonEscaped(text, slash: true).utf8))
            // Encoders that write ASCII only (Python's json.dumps, JSONSerialization's) escape the rest as \uXXXX.
            forms.append(Array(jsonEscaped(text, slash: false, asciiOnly: true).utf8))
            forms.append(Array(jsonEscaped(text, slash: false, asciiOnly: true).uppercasedEscapes().utf8))
            forms.append(Array(urlEncoded(text, spaceAsPlus: false).utf8))
            forms.append(Array(urlEncoded(text, spaceAsPlus: true).utf8))
            // Python's urllib.parse.quote keeps '/' by default.
            forms.append(Array(urlEncoded(text, spaceAsPlus: false, keepSlash: true).utf8))
            for alignment in 0..<3 {
                let base64 = base64Inner(Array(text.utf8), alignment: alignment)
                forms.append(Array(base64.utf8))
                forms.append(Array(base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").utf8))
            }
        }
        var seen: Set<[UInt8]> = []
        return forms.filter { $0.count >= minimumLength && seen.insert($0).inserted }
    }

    /// The base64 characters determined by `bytes` alone when they start `alignment` bytes into a longer text.
    static func base64Inner(_ bytes: [UInt8], alignment: Int) -> String {
        let encoded = Data(Array(repeating: 0, count: alignment) + bytes).base64EncodedString()
            .trimmingCharacters(in: CharacterSet(charactersIn: "="))
        let startBit = 8 * alignment
        let endBit = 8 * (alignment + bytes.count)
        let first = (startBit + 5) / 6
        let last = endBit / 6
        guard first < last else { return "" }
        let characters = Array(encoded)
        return String(characters[first..<min(last, characters.count)])
    }

    /// The text as inside a JSON string; encoders differ on whether `/` is escaped, so both are made.
    static func jsonEscaped(_ text: String, slash: Bool, asciiOnly: Bool = false) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if asciiOnly && scalar.value > 0x7e {
                for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                continue
            }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "/" where slash: out += "\\/"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    static func urlEncoded(_ text: String, spaceAsPlus: Bool, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " ") where spaceAsPlus:
                out += "+"
            case UInt8(ascii: "/") where keepSlash:
                out += "/"
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

extension String {
    /// `\u00e9` as `\u00E9`: the hexadecimal digits of every `\u` escape in upper case.
    fileprivate func uppercasedEscapes() -> String {
        var out = ""
        var rest = Substring(self)
        while let range = rest.range(of: "\\u") {
            out += rest[..<range.upperBound]
            let digits = rest[range.upperBound...].prefix(4)
            out += digits.uppercased()
            rest = rest[digits.endIndex...]
        }
        return out + rest
    }
}
