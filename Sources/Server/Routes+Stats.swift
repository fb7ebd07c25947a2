import Foundation
import Hummingbird
import Runner

/// `/stats`: the four DORA keys (as `pipeline stats`), with two small charts drawn on the server as SVG.
extension Routes {
    func stats(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let query = request.uri.queryParameters
        let environment = query.get("env").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        if let environment, !settings.manifest.environments.contains(where: { $0.name == environment }) {
            throw HTTPError(.notFound, message: "there is no environment '\(environment)'; the pipeline has \(settings.manifest.environments.map(\.name).joined(separator: ", "))")
        }
        let days = try Self.number(query.get("days"), named: "days", in: 1...3650) ?? 30
        let stats = try store.deliveryStats(environment: environment, since: Date().addingTimeInterval(-Double(days) * 86400))
        if api { return try JSONBody.response(stats) }
        let rows = stats.services.map { row -> HTML in
            let failure = row.changeFailureRate.map { String(format: "%.0f%% (%d of %d)", $0 * 100, row.failedChanges, row.changes) } ?? "-"
            return """
                <tr><td>\(row.environment)</td><td><a href="/services/\(urlPart(row.service))">\(row.service)</a></td><td>\(row.deployments)</td>\
                <td>\(String(format: "%.2f", row.deploymentsPerDay))</td><td>\(Self.age(row.leadTimeMedian))</td><td>\(Self.age(row.leadTime90))</td>\
                <td>\(failure)</td><td>\(row.automaticRollbacks) / \(row.manualRollbacks)</td><td>\(Self.age(row.timeToRestoreMedian))</td></tr>
                """
        }
        let choices = settings.manifest.environments.map { env -> HTML in
            "<option value=\"\(env.name)\"\(env.name == environment ? HTML(" selected") : "")>\(env.name)</option>"
        }
        let body: HTML = """
            <form method="get" action="/stats" class="filters"><label>Environment <select name="env"><option value="">all</option>\(choices)</select></label> \
            <label>Days <input name="days" type="number" min="1" max="3650" value="\(days)"></label> <button>Show</button></form>
            <p>From the deployment records of the last \(days) days. <a href="/api/v1/stats?days=\(days)\(environment.map { "&env=\(urlPart($0))" } ?? "")">As JSON</a></p>
            <table><tr><th>Environment</th><th>Service</th><th>Deploys</th><th>Per day</th><th>Lead time (median)</th><th>Lead time (p90)</th>\
            <th>Change failure rate</th><th>Rollbacks (auto / manual)</th><th>Time to restore (median)</th></tr>\(rows)</table>
            <div class="charts"><figure><figcaption>Deploys per week</figcaption>\(Self.weeklyChart(stats.weeks))</figure>
            <figure><figcaption>Lead time for changes</figcaption>\(Self.leadTimeChart(stats.leadTimes))</figure></div>
            """
        return Page.render("Delivery", caller: caller, body: body)
    }

    static func age(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        if seconds < 90 { return "\(Int(seconds.rounded()))s" }
        if seconds < 5400 { return "\(Int((seconds / 60).rounded()))m" }
        if seconds < 172_800 { return String(format: "%.1fh", seconds / 3600) }
        return String(format: "%.1fd", seconds / 86400)
    }

    /// Bars of deploys per week, all environments summed, with each week's count on it.
    static func weeklyChart(_ weeks: [DeliveryStats.WeekCount]) -> HTML {
        var totals: [String: Int] = [:]
        for week in weeks { totals[week.week, default: 0] += week.deployments }
        let ordered = totals.keys.sorted().suffix(26)
        return bars(ordered.map { (label: String($0.dropFirst(5)), value: totals[$0]!) }, empty: "no deploys in this window")
    }

    /// Lead times sorted into ranges.
    static func leadTimeChart(_ leadTimes: [Double]) -> HTML {
        let ranges: [(String, Double)] = [("<1h", 3600), ("1-4h", 4 * 3600), ("4-24h", 86400), ("1-3d", 3 * 86400), ("3-7d", 7 * 86400), (">7d", .infinity)]
        var counts = Array(repeating: 0, count: ranges.count)
        for time in leadTimes { counts[ranges.firstIndex { time < $0.1 }!] += 1 }
        return bars(leadTimes.isEmpty ? [] : zip(ranges, counts).map { (label: $0.0, value: $1) }, empty: "no lead times in this window")
    }

    private static func bars(_ values: [(label: String, value: Int)], empty: String) -> HTML {
        guard !values.isEmpty else { return "<p class=\"muted\">\(empty)</p>" }
        let width = 40, gap = 8, height = 120, top = 16, bottom = 20
        let highest = max(values.map(\.value).max() ?? 1, 1)
        let total = values.count * (width + gap) + gap
        let bars = values.enumerated().map { index, bar -> HTML in
            let x = gap + index * (width + gap)
            let barHeight = bar.value == 0 ? 0 : max(2, bar.value * height / highest)
            let y = top + height - barHeight
            return """
                <rect x="\(x)" y="\(y)" width="\(width)" height="\(barHeight)" fill="#4a7bd0"><title>\(bar.label): \(bar.value)</title></rect>\
                <text x="\(x + width / 2)" y="\(y - 3)" text-anchor="middle" font-size="11">\(bar.value)</text>\
                <text x="\(x + width / 2)" y="\(top + height + 14)" text-anchor="middle" font-size="10">\(bar.label)</text>
                """
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(total)" height="\(top + height + bottom)" viewBox="0 0 \(total) \(top + height + bottom)" role="img">\
            <line x1="0" y1="\(top + height)" x2="\(total)" y2="\(top + height)" stroke="#999"/>\(bars)</svg>
            """
    }
}
