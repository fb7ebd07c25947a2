import PipelineDSL

/// The one place run-time placeholders are filled: `{sha}` (the full 40-character commit SHA, everywhere),
/// `{shortSha}` (its first 12 characters), `{run}` (the run's number), `{user}` (who started it) and `{env}`.
/// Plan-time placeholders (`{service}`, `{var.NAME}`, ...) are filled when the plan is made.
public struct RunPlaceholders: Sendable, Equatable {
    /// The names filled here; the DSL leaves exactly these for run time.
    public static let names: Set<String> = ["sha", "shortSha", "run", "user", "env"]

    public let values: [String: String]

    public init(environment: String, sha: String?, run: Int, user: String) {
        var values = ["env": environment, "run": String(run), "user": user]
        if let sha, !sha.isEmpty {
            values["sha"] = sha
            values["shortSha"] = String(sha.prefix(12))
        }
        self.values = values
    }

    /// `text` filled in; throws when it names a run-time placeholder this run has no value for (no commit).
    public func fill(_ text: String, field: String) throws -> String {
        var missing: [String] = []
        let filled = fill(text) { missing.append($0) }
        if let first = missing.first {
            throw StageContextError("\(field) '\(text)' needs {\(first)}, which this run has no value for (it has no commit SHA)")
        }
        return filled
    }

    /// `text` filled in, with `fallback` for what the run has no value of (a message that must still be sent).
    public func fill(_ text: String, fallback: [String: String]) -> String {
        fill(text) { _ in }.replacingPlaceholders(fallback)
    }

    private func fill(_ text: String, missing: (String) -> Void) -> String {
        var result = ""
        var rest = text[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            if let value = values[name] {
                result += value
            } else {
                if Self.names.contains(name) { missing(name) }
                result += rest[open...close]
            }
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}

extension String {
    fileprivate func replacingPlaceholders(_ values: [String: String]) -> String {
        values.reduce(self) { text, pair in text.replacingOccurrences(of: "{\(pair.key)}", with: pair.value) }
    }
}
