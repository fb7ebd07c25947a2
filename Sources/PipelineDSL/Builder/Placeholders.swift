/// `{name}` placeholders in plan strings.
enum Placeholders {
    /// Placeholders filled in when a run starts, never at plan time.
    static let runTime: Set<String> = ["sha", "shortSha", "run", "user"]

    /// Fills in `{name}` for each name in `values`, keeps the names in `keep`, and calls `unknown` for the rest
    /// (which stay as written).
    static func expand(
        _ text: String, values: [String: String], keep: Set<String>, unknown: (String) -> Void
    ) -> String {
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let char = text[index]
            guard char == "{", let close = text[index...].firstIndex(of: "}") else {
                result.append(char)
                index = text.index(after: index)
                continue
            }
            let name = String(text[text.index(after: index)..<close])
            if let value = values[name] {
                result += value
            } else {
                if !keep.contains(name) { unknown(name) }
                result += text[index...close]
            }
            index = text.index(after: close)
        }
        return result
    }

    /// A hint naming the placeholders that exist, for an unknown one.
    static func hint(_ name: String, known: [String: String]) -> String {
        let names = (Array(known.keys) + Array(runTime)).sorted().map { "{\($0)}" }
        if name.hasPrefix("var.") {
            return "; declare it with Environment(...).variable(\"\(name.dropFirst(4))\", ...)"
        }
        return "; known: \(names.joined(separator: ", "))"
    }
}
