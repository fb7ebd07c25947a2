/// A URL as logs and messages may show it: without the user and password it may carry and without its query's
/// values (`https://user:token@host/p?auth=secret` → `https://***@host/p?auth=***`), which are where credentials go.
public enum URLText {
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        var rest = Substring(url[scheme.upperBound...])
        var query: Substring?
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = "***" + rest[at...] }
        let shownQuery = query.map { query in
            "?" + query.split(separator: "&", omittingEmptySubsequences: false).map { pair in
                pair.firstIndex(of: "=").map { "\(pair[..<$0])=***" } ?? String(pair)
            }.joined(separator: "&")
        } ?? ""
        return String(url[..<scheme.upperBound]) + rest + shownQuery
    }
}
