import Foundation
import HTTP
import Runner
import Testing
import TestSupport

/// `GET /metrics` as Prometheus sees it: a real Prometheus (Debian's) scrapes the server with an API token, and
/// its HTTP API answers with the run counter after a run; the totals come from the state, so a restarted server
/// reports the same.
@Suite struct MetricsTests {
    @Test func prometheusScrapesTheRunCounterAndARestartKeepsTheTotals() async throws {
        let served = try await ServedPipeline()
        #expect(try await served.pipeline("run", "staging").status == 0)
        #expect(try await served.pipeline("run", "broken").status != 0)
        let token = try await served.pipeline("tokens", "create", "--user", "carol").stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Signed out, nothing; with a viewer's token, the text format.
        #expect(try await Browser(served.url).get("/metrics").status == 401)
        let browser = Browser(served.url)
        browser.bearer = token
        let scraped = try await browser.get("/metrics")
        #expect(scraped.status == 200 && scraped.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = scraped.text
        #expect(text.contains(#"pipeline_runs_total{environment="staging",status="succeeded",trigger="cli"} 1"#), "\(text)")
        #expect(text.contains(#"pipeline_runs_total{environment="broken",status="failed",trigger="cli"} 1"#), "\(text)")
        #expect(text.contains(#"pipeline_runs_started_total{environment="staging",trigger="cli"} 1"#), "\(text)")
        #expect(text.contains(#"pipeline_run_duration_seconds_count{environment="staging",status="succeeded"} 1"#), "\(text)")
        #expect(text.contains(#"pipeline_stage_duration_seconds_count{kind="shell",status="succeeded"}"#), "\(text)")
        #expect(text.contains(#"pipeline_runs_waiting_for_approval{environment="prod"} 0"#), "\(text)")
        #expect(text.contains(#"pipeline_stage_attempts_total{kind="shell"}"#), "\(text)")
        #expect(!text.contains(ServedPipeline.secret))
        // Prometheus' own linter finds nothing to say (names, units, HELP and TYPE lines).
        let lint = TemporaryDirectory("pipeline-promtool")
        lint.write("metrics.txt", text)
        let checked = try await runProcess(URL(filePath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < metrics.txt"], in: lint.url)
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        // A restart reports the same totals (counted from the state, not from what the process saw).
        served.kill()
        try await served.start()
        let again = Browser(served.url)
        again.bearer = token
        let restarted = try await again.get("/metrics").text
        #expect(restarted.contains(#"pipeline_runs_total{environment="staging",status="succeeded",trigger="cli"} 1"#), "\(restarted)")
        #expect(restarted.contains(#"pipeline_run_duration_seconds_count{environment="staging",status="succeeded"} 1"#), "\(restarted)")

        // `pipeline gc` removes old runs and changes no total; a run after it still counts.
        #expect(try await served.pipeline("gc", "--keep", "0").status == 0)
        #expect(try served.store.runs(limit: 10).isEmpty)
        #expect(try await served.pipeline("run", "staging").status == 0)
        let collected = try await again.get("/metrics").text
        for line in [
            #"pipeline_runs_total{environment="staging",status="succeeded",trigger="cli"} 2"#,
            #"pipeline_runs_total{environment="broken",status="failed",trigger="cli"} 1"#,
            #"pipeline_runs_started_total{environment="staging",trigger="cli"} 2"#,
            #"pipeline_run_duration_seconds_count{environment="staging",status="succeeded"} 2"#,
        ] {
            #expect(collected.contains(line), "\(line)\n\(collected)")
        }
        let attempts = { (text: String) in
            text.split(separator: "\n").first { $0.hasPrefix(#"pipeline_stage_attempts_total{kind="shell"}"#) }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        #expect(attempts(collected) > attempts(restarted), "\(collected)")

        // Prometheus scrapes it (every second, with the token) and answers for the counter.
        let folder = TemporaryDirectory("pipeline-prometheus")
        let port = freePort()
        let target = served.url.replacingOccurrences(of: "http://", with: "")
        folder.write("token", token)
        folder.write(
            "prometheus.yml",
            """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: pipeline
                authorization:
                  credentials_file: \(folder.url.appending(path: "token").path)
                static_configs:
                  - targets: ["\(target)"]
            """)
        let prometheus = try ServerProcess(
            "/usr/bin/prometheus",
            ["--config.file=\(folder.url.appending(path: "prometheus.yml").path)", "--storage.tsdb.path=\(folder.url.appending(path: "data").path)",
             "--web.listen-address=127.0.0.1:\(port)"])
        let client = HTTPClient()
        var value: String?
        var last = ""
        for _ in 0..<600 where value == nil {
            let query = #"pipeline_runs_total{environment="staging",status="succeeded"}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            if let answer = try? await client.send(HTTPRequest(url: "http://127.0.0.1:\(port)/api/v1/query?query=\(query)", timeout: 5)) {
                last = answer.text
                let json = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
                let results = (json?["data"] as? [String: Any])?["result"] as? [[String: Any]]
                value = (results?.first?["value"] as? [Any])?.last as? String
            }
            if value == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(value == "2", "\(last)")
        withExtendedLifetime(prometheus) {}
    }
}
