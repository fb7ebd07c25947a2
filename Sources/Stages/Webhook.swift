import Foundation
import HTTP
import PipelineDSL
import StageContract

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
}

/// The notify stage: posts its message to the webhook whose URL the runner hands it as `PIPELINE_WEBHOOK_URL`. A
/// failure is logged and the stage still succeeds: a notification never fails a deploy.
enum NotifyStage {
    static func run(_ spec: NotifySpec, _ context: StageContext) async -> Int32 {
        guard let url = context.processEnvironment["PIPELINE_WEBHOOK_URL"] else {
            print("warning: no webhook URL was handed to this stage; nothing posted")
            return 0
        }
        // A message is sent even when the run has no commit: its placeholders say so.
        let text = context.run.placeholders.fill(spec.message, fallback: ["sha": "no commit", "shortSha": "no commit"])
        let fields = [
            "event": "notify", "environment": context.run.environment, "sha": context.run.sha ?? "",
            "run": String(context.run.runID), "stage": context.stageID,
        ]
        if let failure = await Webhook.post(url: url, format: spec.format, text: text, fields: fields) {
            print("warning: the notification was not delivered: \(failure); the run goes on")
        } else {
            print("posted: \(text)")
        }
        return 0
    }
}
