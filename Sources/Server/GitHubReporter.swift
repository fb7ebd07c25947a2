import Foundation
import HTTP
import Logging
import PipelineDSL
import Runner
import Synchronization

/// Tells GitHub how each run goes: a commit status per environment (`pipeline/ENV`) on the run's commit, and a
/// deployment with deployment statuses, so the repository's Deployments view shows what is live where.
///
/// It works from the state, not from the runs: every few seconds it works out what GitHub should show for each
/// recent run and sends what changed since the last report (kept in the state, so a restart neither repeats nor
/// loses a report). Runs started from the CLI are reported as well as the server's. A failed report is logged and
/// tried again later with a growing pause; rate-limit answers (403 or 429 with `retry-after` or
/// `x-ratelimit-reset`) are waited out. Nothing here ever touches a run: a GitHub outage never fails or slows one.
final class GitHubReporter: Sendable {
    let settings: ServerSettings
    let store: StateStore
    let forge: ForgeSpec
    let secrets: ForgeSecrets
    let client = HTTPClient()
    private static let logger = Logger(label: "pipeline.serve.github")
    /// Until when GitHub asked for no more requests (a rate limit holds for the token, not for one run).
    private let pausedUntil = Mutex<Date?>(nil)
    /// Failures in a row after which a report that GitHub refuses for good (4xx other than rate limits) is given up.
    static let attempts = 8

    init?(settings: ServerSettings, store: StateStore, secrets: ForgeSecrets) {
        guard let forge = settings.manifest.forge(.github), forge.token != nil else { return nil }
        self.settings = settings
        self.store = store
        self.forge = forge
        self.secrets = secrets
    }

    /// Reports until cancelled.
    func run(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await reportOnce()
            try? await Task.sleep(for: interval)  // cancelled: the loop ends
        }
    }

    /// One pass over the recent runs.
    func reportOnce() async {
        if let until = pausedUntil.withLock({ $0 }), until > Date() { return }
        let runs: [RunRecord]
        do {
            // Every run of the last week with a commit whose last report is not final yet (however many newer
            // runs there are: a prod run waiting for days while staging deploys all day still gets its end).
            runs = try store.runsToReport(since: Date().addingTimeInterval(-7 * 86400))
        } catch {
            Self.logger.error("reading the runs to report: \(error)")
            return
        }
        for run in runs where !Task.isCancelled {
            if let until = pausedUntil.withLock({ $0 }), until > Date() { return }
            do {
                try await report(run)
            } catch {
                Self.logger.error("reading what run \(run.id) reported: \(error)")
            }
        }
    }

    /// What GitHub should show of `run`, and what it was last told.
    private func report(_ listed: RunRecord) async throws {
        var report = try store.forgeReport(run: listed.id) ?? ForgeReport(run: listed.id)
        if let next = report.nextTry, next > Date() { return }
        // Read again now: the list is a moment old, and a runner that ended since would look like one that died.
        guard var run = try store.run(listed.id) else { return }
        if run.shownStatus == .interrupted && run.status != .interrupted {
            try await Task.sleep(for: .milliseconds(200))
            guard let again = try store.run(listed.id) else { return }
            run = again
        }
        let wanted = try wantedState(run)
        let statusDue = wanted.status.map { $0.state != report.statusState || $0.description != report.statusDescription } ?? false
        let deploymentDue = report.deploymentID == nil || wanted.deployment != report.deploymentState
        guard statusDue || deploymentDue else { return }
        do {
            let token = try await secrets.value(forge.token!)
            if statusDue, let status = wanted.status, let sha = run.sha {
                var body: [String: Any] = ["state": status.state, "description": status.description, "context": "pipeline/\(run.environment)"]
                if let link = link("/runs/\(run.id)") { body["target_url"] = link }
                _ = try await send("POST", "/repos/\(forge.repository)/statuses/\(sha)", body, token: token)
                report.statusState = status.state
                report.statusDescription = status.description
            }
            if report.deploymentID == nil, let sha = run.sha {
                let gated = (settings.manifest.stages[run.environment] ?? []).contains { if case .approval = $0.spec { true } else { false } }
                let created = try await send("POST", "/repos/\(forge.repository)/deployments", [
                    "ref": sha, "environment": run.environment, "auto_merge": false, "required_contexts": [String](),
                    "task": run.trigger == "rollback" ? "deploy:rollback" : "deploy",
                    "description": String("run \(run.id): \(run.trigger == "rollback" ? "rollback" : "deploy") of \(sha.prefix(12)) to \(run.environment)".prefix(140)),
                    "payload": ["run": run.id], "production_environment": gated, "transient_environment": false,
                ], token: token)
                guard let id = created["id"] as? Int else { throw ReportError(message: "GitHub's answer to the new deployment has no id") }
                report.deploymentID = id
            }
            if let id = report.deploymentID, wanted.deployment != report.deploymentState {
                var body: [String: Any] = ["state": wanted.deployment, "description": wanted.status?.description ?? wanted.deployment, "environment": run.environment]
                if let log = link("/runs/\(run.id)") { body["log_url"] = log }
                if let page = link("/environments") { body["environment_url"] = page }
                if wanted.deployment == "success" { body["auto_inactive"] = true }
                _ = try await send("POST", "/repos/\(forge.repository)/deployments/\(id)/statuses", body, token: token)
                report.deploymentState = wanted.deployment
            }
            report.failures = 0
            report.lastError = nil
            report.nextTry = nil
        } catch let error as RateLimited {
            pausedUntil.withLock { $0 = max($0 ?? error.until, error.until) }
            Self.logger.warning("\(error.description)")
        } catch {
            report.failures += 1
            report.lastError = String(describing: error)
            let refused = (error as? ReportError)?.status.map { (400..<500).contains($0) } ?? false
            if refused && report.failures >= Self.attempts {
                // GitHub refuses it for good (an unknown commit, a token without the right): stop asking.
                report.nextTry = .distantFuture
                Self.logger.error("run \(run.id): GitHub refused the report \(report.failures) times; giving up on it: \(error)")
            } else {
                report.nextTry = Date().addingTimeInterval(min(300, 2 * pow(2, Double(min(report.failures, 8)))))
                Self.logger.error("run \(run.id): reporting to GitHub failed (\(report.failures) in a row; next try in \(Int(report.nextTry!.timeIntervalSinceNow)) s): \(error)")
            }
        }
        try store.saveForgeReport(report)
    }

    struct Wanted {
        var status: (state: String, description: String)?
        var deployment: String
    }

    /// The commit status (deploys only: a rollback's commit is an earlier one) and the deployment status `run`'s
    /// state calls for.
    func wantedState(_ run: RunRecord) throws -> Wanted {
        let sha = String((run.sha ?? "").prefix(12))
        let status = run.shownStatus
        let (state, deployment, description): (String, String, String) = switch status {
        case .queued: ("pending", "queued", "queued for \(run.environment)")
        case .running, .approved: ("pending", "in_progress", "deploying \(sha) to \(run.environment)")
        case .waiting: ("pending", "pending", "waiting for approval by \(approvers(run))")
        case .succeeded: ("success", "success", "deployed to \(run.environment)\(took(run))")
        case .failed: ("failure", "failure", try failed(run).map { "\($0) failed" } ?? "failed\(run.message.map { ": \($0)" } ?? "")")
        case .rolledBack: ("failure", "failure", try rolledBack(run))
        case .cancelled: ("error", "error", "cancelled\(run.message.map { ": \($0)" } ?? "")")
        case .interrupted: ("error", "error", "interrupted: its runner stopped; `pipeline resume \(run.id)` continues it")
        case .superseded: ("error", "inactive", "superseded by a newer commit's run")
        }
        let shown = String(description.prefix(140))  // GitHub's limit for a status description
        return Wanted(status: run.trigger == "rollback" ? nil : (state, shown), deployment: deployment)
    }

    private func approvers(_ run: RunRecord) -> String {
        let names = (settings.manifest.stages[run.environment] ?? []).flatMap { stage -> [String] in
            if case .approval(let spec) = stage.spec { spec.approvers } else { [] }
        }
        guard !names.isEmpty else { return "an approver" }
        return names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// "rolled back user-service after user-service.health failed".
    private func rolledBack(_ run: RunRecord) throws -> String {
        let services = try store.rolledBackServices(run: run.id)
        let what = services.isEmpty ? "rolled back" : "rolled back \(services.joined(separator: ", "))"
        return what + (try failed(run).map { " after \($0) failed" } ?? "")
    }

    /// The stages of `run` that failed, by id.
    private func failed(_ run: RunRecord) throws -> String? {
        let stages = try store.stageRuns(run.id).filter { $0.status == .failed }.map(\.stageID)
        return stages.isEmpty ? nil : stages.joined(separator: ", ")
    }

    private func took(_ run: RunRecord) -> String {
        guard let start = run.startedAt, let end = run.finishedAt else { return "" }
        let seconds = Int(end.timeIntervalSince(start).rounded())
        return " in " + (seconds < 60 ? "\(seconds)s" : "\(seconds / 60)m \(seconds % 60)s")
    }

    private func link(_ path: String) -> String? {
        settings.publicURL.map { $0.absoluteString.hasSuffix("/") ? String($0.absoluteString.dropLast()) + path : $0.absoluteString + path }
    }

    /// One REST call. A rate-limit answer pauses the whole reporter until GitHub's time (the run's report is sent
    /// again then); no request goes out before it.
    private func send(_ method: String, _ path: String, _ body: [String: Any], token: String) async throws -> [String: Any] {
        let base = (forge.api ?? "https://api.github.com").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let request = HTTPRequest(
            method: method, url: base + path,
            headers: [
                ("Accept", "application/vnd.github+json"), ("Authorization", "Bearer \(token)"), ("X-GitHub-Api-Version", "2022-11-28"),
                ("User-Agent", "pipeline"), ("Content-Type", "application/json"),
            ],
            body: .bytes(Array(data)), timeout: 20, connectTimeout: 5)
        let response: HTTPResponse
        do {
            response = try await client.send(request)
        } catch {
            throw ReportError(message: "\(method) \(path): \(error.message)", status: nil)
        }
        if (200..<300).contains(response.status) {
            return (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        }
        if let pause = Self.rateLimitPause(response) {
            throw RateLimited(until: Date().addingTimeInterval(pause))
        }
        let message = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["message"] as? String
        // Whatever GitHub (or a proxy before it) answered, the token never goes into a log or the state.
        let said = message.map { ": " + String($0.replacingOccurrences(of: token, with: "***").prefix(300)) } ?? ""
        throw ReportError(message: "\(method) \(path): GitHub answered \(response.status)\(said)", status: response.status)
    }

    /// How long GitHub asks to wait, when its answer is a rate limit: 429 or 403 with `retry-after`, or
    /// `x-ratelimit-remaining: 0` with `x-ratelimit-reset` (epoch seconds), as its REST documentation describes.
    static func rateLimitPause(_ response: HTTPResponse, now: Date = Date()) -> TimeInterval? {
        guard response.status == 403 || response.status == 429 else { return nil }
        if let after = response.header("retry-after").flatMap(Double.init) { return max(0, after) }
        if response.header("x-ratelimit-remaining") == "0", let reset = response.header("x-ratelimit-reset").flatMap(Double.init) {
            return max(0, reset - now.timeIntervalSince1970) + 1
        }
        // GitHub's secondary limits without a header: wait at least a minute.
        return response.status == 429 ? 60 : nil
    }

    struct RateLimited: Error, CustomStringConvertible {
        let until: Date
        var description: String { "GitHub's rate limit: no report goes out until \(until)" }
    }

    struct ReportError: Error, CustomStringConvertible {
        let message: String
        /// GitHub's answer, when there was one.
        var status: Int?
        init(message: String, status: Int? = nil) {
            self.message = message
            self.status = status
        }
        var description: String { message }
    }
}
