import Foundation

/// HTML built so that every interpolated value is escaped unless it is HTML already: `"<td>\(subject)</td>"` shows a
/// commit subject `<script>` as text. Only `HTML` values (built the same way) go in unescaped.
struct HTML: Sendable, ExpressibleByStringInterpolation {
    var text: String

    init(stringLiteral value: String) { text = value }
    init(stringInterpolation: StringInterpolation) { text = stringInterpolation.text }
    init(_ pieces: [HTML]) { text = pieces.map(\.text).joined() }

    struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        init(literalCapacity: Int, interpolationCount: Int) { text.reserveCapacity(literalCapacity * 2) }
        mutating func appendLiteral(_ literal: String) { text += literal }
        mutating func appendInterpolation(_ value: String) { text += HTML.escape(value) }
        mutating func appendInterpolation(_ value: String?) { text += HTML.escape(value ?? "") }
        mutating func appendInterpolation(_ value: Int) { text += String(value) }
        mutating func appendInterpolation(_ html: HTML) { text += html.text }
        mutating func appendInterpolation(_ pieces: [HTML]) { text += pieces.map(\.text).joined() }
    }

    /// `text` with `& < > " '` replaced by entities: safe in element content and quoted attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}

/// A URL path segment or query value, percent-encoded (for links built from names): all but RFC 3986's unreserved.
func urlPart(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text  // nil only for invalid UTF-16, which a String is not
}

private let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
