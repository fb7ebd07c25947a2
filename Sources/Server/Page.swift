import Foundation
import HTTPTypes
import Hummingbird
import Runner

/// The frame every page shares: its title, the navigation, who is signed in (with a sign-out form), then the body.
enum Page {
    static func render(_ title: String, caller: Caller?, body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        let account: HTML
        if let caller {
            let signOut: HTML = caller.kind == .serverUser
                ? "<form method=\"post\" action=\"/signout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(caller.csrf ?? "")\"><button>Sign out</button></form>"
                : ""
            account = "<span class=\"who\">\(caller.name) · \(caller.user.role.rawValue)</span> \(signOut)"
        } else {
            account = "<a href=\"/signin\">Sign in</a>"
        }
        let page: HTML = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title) · pipeline</title><link rel="stylesheet" href="/static/style.css"><script src="/static/live.js" defer></script></head>
            <body><header><nav><a href="/environments">Environments</a> <a href="/runs">Runs</a> <a href="/stats">Delivery</a> <a href="/audit">Audit</a></nav><div class="account">\(account)</div></header>
            <main><h1>\(title)</h1>
            \(body)
            </main></body></html>
            """
        return html(page, status: status)
    }

    static func html(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page.text)))
    }

    /// A form that posts to `action` with the caller's CSRF token.
    static func form(_ action: String, caller: Caller, button: String, fields: HTML = "", danger: Bool = false) -> HTML {
        "<form method=\"post\" action=\"\(action)\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(caller.csrf ?? "")\">\(fields)<button\(danger ? HTML(" class=\"danger\"") : "")>\(button)</button></form>"
    }

    static func time(_ date: Date?) -> HTML {
        guard let date else { return "-" }
        return "<time datetime=\"\(Dates.iso8601(date))\">\(Dates.short(date))</time>"
    }

    static func status(_ status: String) -> HTML { "<span class=\"status s-\(status)\">\(status)</span>" }

    static func short(_ sha: String?) -> String { sha.map { String($0.prefix(12)) } ?? "-" }
}

enum Dates {
    /// `2026-12-03 04:31:49 UTC` (formatted by hand: a formatter per call costs more than the rest of a page).
    static func short(_ date: Date) -> String {
        let (day, time) = parts(date)
        return "\(day) \(time) UTC"
    }

    /// `2026-12-03T04:31:49Z`.
    static func iso8601(_ date: Date) -> String {
        let (day, time) = parts(date)
        return "\(day)T\(time)Z"
    }

    private static func parts(_ date: Date) -> (String, String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&seconds, &fields)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return ("\(fields.tm_year + 1900)-\(two(fields.tm_mon + 1))-\(two(fields.tm_mday))", "\(two(fields.tm_hour)):\(two(fields.tm_min)):\(two(fields.tm_sec))")
    }

    static func duration(from start: Date?, to end: Date?) -> String {
        guard let start else { return "-" }
        let seconds = (end ?? Date()).timeIntervalSince(start)
        return seconds < 60 ? String(format: "%.1f s", seconds) : "\(Int(seconds) / 60) min \(Int(seconds) % 60) s"
    }
}

/// JSON as the API answers it: the same encoder settings as the CLI's `--json`.
enum JSONBody {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
    }
}

/// Static files: the style sheet and the little script that keeps run pages live.
enum StaticFiles {
    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
        header{display:flex;justify-content:space-between;align-items:center;padding:8px 16px;background:#24292f;color:#fff}
        header a{color:#fff;margin-right:14px;text-decoration:none}header .who{margin-right:8px}
        main{padding:16px 24px;max-width:1200px}h1{font-size:20px}h2{font-size:16px;margin-top:24px}
        table{border-collapse:collapse;background:#fff;width:100%;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
        .status{padding:1px 6px;border-radius:8px;background:#eaeef2}.s-succeeded{background:#dafbe1}.s-failed,.s-timedOut,.s-rolled-back{background:#ffebe9}
        .s-running{background:#ddf4ff}.s-waiting,.s-approved,.s-queued{background:#fff8c5}.s-cancelled,.s-interrupted,.s-skipped{background:#eaeef2}
        pre.log{background:#0d1117;color:#e6edf3;padding:8px;max-height:420px;overflow:auto;white-space:pre-wrap}
        form.inline{display:inline}button{cursor:pointer}button.danger{color:#cf222e}.notice{background:#fff8c5;padding:8px}
        .error{background:#ffebe9;padding:8px}details.files a{display:block;overflow-wrap:anywhere}label{display:block;margin:6px 0}code{font-size:13px}
        """

    static let live = """
        "use strict";
        // Log panes: <details><pre data-log-src="URL"> follows a stage's masked log over server-sent events while the
        // pane is open; the browser resumes after the last line it has (Last-Event-ID) when the stream breaks.
        const follow = (details) => {
          const pane = details.querySelector("pre[data-log-src]");
          if (!pane || pane.source || pane.ended) return;
          pane.textContent = "";
          const source = new EventSource(pane.dataset.logSrc);
          pane.source = source;
          source.onmessage = (event) => {
            const stick = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
            pane.append(event.data + "\\n");
            if (stick) pane.scrollTop = pane.scrollHeight;
          };
          source.addEventListener("end", () => { source.close(); pane.source = null; pane.ended = true; });
        };
        const unfollow = (details) => {
          const pane = details.querySelector("pre[data-log-src]");
          if (pane && pane.source) { pane.source.close(); pane.source = null; }
        };
        for (const details of document.querySelectorAll("details[data-stage-log]")) {
          details.addEventListener("toggle", () => details.open ? follow(details) : unfollow(details));
          if (details.open) follow(details);
        }
        // Run pages: [data-run-src] receives the run as JSON whenever it changes; stage rows and the status follow.
        for (const run of document.querySelectorAll("[data-run-src]")) {
          const source = new EventSource(run.dataset.runSrc);
          source.onmessage = (event) => {
            const view = JSON.parse(event.data);
            const status = document.getElementById("run-status");
            if (status) { status.textContent = view.status; status.className = "status s-" + view.status; }
            const notice = document.getElementById("run-message");
            if (notice) { notice.textContent = view.message || ""; notice.hidden = !view.message; }
            // A page drawn before the run's plan was written lacks stages: draw it again once they are known.
            if (view.stages.some((stage) => !document.querySelector('tr[data-stage="' + CSS.escape(stage.id) + '"]'))) {
              source.close();
              location.reload();
              return;
            }
            for (const stage of view.stages) {
              const row = document.querySelector('tr[data-stage="' + CSS.escape(stage.id) + '"]');
              if (!row) continue;
              const cell = row.querySelector(".status");
              if (cell) { cell.textContent = stage.status; cell.className = "status s-" + stage.status; }
              const attempts = row.querySelector(".attempts");
              if (attempts) attempts.textContent = String(stage.attempts);
              const message = row.querySelector(".message");
              if (message) message.textContent = stage.message || "";
              const details = document.querySelector('details[data-stage-log="' + CSS.escape(stage.id) + '"]');
              if (details && stage.status === "running" && !details.dataset.seen) { details.dataset.seen = "1"; details.open = true; }
              const took = row.querySelector(".took");
              if (took && stage.startedAt) {
                const seconds = ((stage.finishedAt ? Date.parse(stage.finishedAt) : Date.now()) - Date.parse(stage.startedAt)) / 1000;
                took.textContent = seconds < 60 ? seconds.toFixed(1) + " s" : Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
              }
            }
          };
          source.addEventListener("end", () => source.close());
        }
        """
}
