import Foundation
import HTTP
import PipelineDSL

/// Posts one message to a Slack-compatible incoming webhook (`{"text": ...}`) or a generic JSON webhook (the event's
/// fields plus `text`). Never throws: a failure comes back as a sentence that does not contain the URL (a secret).
public enum Webhook {
    /// Posts; returns nil on a 2xx answer, else what went wrong.
    public static func post(url: String, format: NotificationFormat, text: String, fields: [String: String], timeout: Double = 5) async -> String? {
        let payload: [String: String] = format == .slack ? ["text": text] : fields.merging(["text": text]) { _, new in new }
        guard let body = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else { return "cannot encode the message" }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else { return "the webhook secret is not an http(s) URL" }
        do {
            let response = try await HTTPClient().send(
                HTTPRequest(
                    method: "POST", url: url, headers: [("Content-Type", "application/json")], body: .bytes(Array(body)), timeout: timeout,
                    connectTimeout: timeout))
            return (200..<300).contains(response.status) ? nil : "the webhook answered HTTP \(response.status)"
        } catch {
            return "the webhook could not be reached (\(error.kind))"
        }
    }

    /// `{env}`, `{sha}`, `{run}` and `{user}` filled in.
    public static func fill(_ message: String, environment: String, sha: String?, run: Int, user: String) -> String {
        message.replacingOccurrences(of: "{env}", with: environment)
            .replacingOccurrences(of: "{sha}", with: sha.flatMap { $0.isEmpty ? nil : String($0.prefix(12)) } ?? "no commit")
            .replacingOccurrences(of: "{run}", with: String(run)).replacingOccurrences(of: "{user}", with: user)
    }
}

/// The notify stage: posts its message to the webhook whose URL the runner hands it as `PIPELINE_WEBHOOK_URL`. A
/// failure is logged and the stage still succeeds: a notification never fails a deploy.
enum NotifyStage {
    static func run(_ spec: NotifySpec, environment: [String: String]) async -> Int32 {
        guard let url = environment["PIPELINE_WEBHOOK_URL"] else {
            print("warning: no webhook URL was handed to this stage; nothing posted")
            return 0
        }
        let text = Webhook.fill(
            spec.message, environment: environment["PIPELINE_ENV"] ?? "", sha: environment["PIPELINE_SHA"],
            run: Int(environment["PIPELINE_RUN_ID"] ?? "") ?? 0, user: environment["PIPELINE_RUN_USER"] ?? environment["USER"] ?? "")
        let fields = [
            "event": "notify", "environment": environment["PIPELINE_ENV"] ?? "", "sha": environment["PIPELINE_SHA"] ?? "",
            "run": environment["PIPELINE_RUN_ID"] ?? "", "stage": environment["PIPELINE_STAGE"] ?? "",
        ]
        if let failure = await Webhook.post(url: url, format: spec.format, text: text, fields: fields) {
            print("warning: the notification was not delivered: \(failure); the run goes on")
        } else {
            print("posted: \(text)")
        }
        return 0
    }
}
