import Foundation
import Hashing
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PipelineDSL
import Runner
import Synchronization

/// `POST /hooks/github`, `/hooks/gitlab` and `/hooks/gitea`: a push to an environment's branch starts that
/// environment's run of the pushed commit, under the rules of `pipeline hooks fire` (the run's trigger is
/// `webhook`, one of the commit triggers: one run per environment and commit, and `newestOnly` queues).
///
/// A delivery is believed only when signed with the webhook secret (GitHub: `X-Hub-Signature-256`, the HMAC-SHA256
/// of the raw body; Gitea and Forgejo: `X-Gitea-Signature`, the same in plain hex; GitLab: the secret token itself
/// in `X-Gitlab-Token`), compared in constant time; otherwise 401 and nothing happens. A delivery id seen before (a
/// redelivery) starts nothing new. Pings, tags, branch deletions and other events are answered and logged.
final class Webhooks: Sendable {
    let settings: ServerSettings
    let store: StateStore
    let starter: RunStarter
    let secrets: ForgeSecrets
    private let recent = Mutex<[String: Date]>([:])
    private static let logger = Logger(label: "pipeline.serve.hooks")
    static let largestBody = 5 << 20

    init(settings: ServerSettings, store: StateStore, starter: RunStarter, secrets: ForgeSecrets) {
        self.settings = settings
        self.store = store
        self.starter = starter
        self.secrets = secrets
    }

    func register(_ router: Router<ServerContext>) {
        for kind in ForgeSpec.Kind.allCases {
            router.post("/hooks/\(kind.rawValue)") { request, context in try await self.receive(kind, request, context: context) }
        }
    }

    private func receive(_ kind: ForgeSpec.Kind, _ request: Request, context: ServerContext) async throws -> Response {
        guard let forge = settings.manifest.forge(kind) else {
            throw HTTPError(.notFound, message: "this pipeline names no \(kind.rawValue) repository; declare one in pipelines/ (\(Self.declaration(kind)))")
        }
        guard let reference = forge.webhookSecret else {
            throw HTTPError(.unauthorized, message: "this pipeline's \(kind.rawValue) repository has no webhook secret, so no delivery can be verified; set webhookSecret")
        }
        // A push delivery is a few KiB (GitHub lists at most 20 commits in it); the body is read before its signature can
        // be checked, so the cap is low.
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.body.collect(upTo: Self.largestBody))
        } catch is NIOTooManyBytesError {
            throw HTTPError(.contentTooLarge, message: "the delivery is larger than \(Self.largestBody >> 20) MiB; nothing was started")
        }
        let secret: String
        do {
            secret = try await secrets.value(reference)
        } catch {
            Self.logger.error("\(kind.rawValue) webhook: \(error)")
            throw HTTPError(.serviceUnavailable, message: "the webhook secret cannot be read right now; nothing was started (the server's log says why)")
        }
        guard Self.verified(kind, request.headers, body: body, secret: secret) else {
            Self.logger.warning("\(kind.rawValue) webhook from \(context.clientAddress ?? "?"): missing or wrong signature; refused")
            throw HTTPError(.unauthorized, message: "the delivery's signature is missing or does not match the webhook secret; nothing was started")
        }
        let event = Self.event(kind, request.headers)
        let delivery = Self.deliveryID(kind, request.headers).map { $0.count > 200 ? "sha256:" + SHA256.hex($0) : $0 } ?? "body:" + SHA256.hash(body).hexString
        guard try store.recordDelivery(forge: kind.rawValue, id: delivery, event: event, outcome: "received") else {
            let earlier = try store.deliveryOutcome(forge: kind.rawValue, id: delivery) ?? ""
            return try answer(.ok, "delivery \(delivery) was received before (\(earlier)); nothing new started", environments: [])
        }
        do {
            let (status, outcome, started) = try await handle(kind, forge: forge, event: event, body: body)
            try store.setDeliveryOutcome(forge: kind.rawValue, id: delivery, outcome: outcome)
            Self.logger.info("\(kind.rawValue) delivery \(delivery) (\(event)): \(outcome)")
            for start in started {
                watch(start, kind: kind, delivery: delivery, address: context.clientAddress)
            }
            return try answer(status, outcome, environments: started.map(\.environment))
        } catch {
            // Nothing was done: a redelivery may try again.
            try? store.forgetDelivery(forge: kind.rawValue, id: delivery)  // if this fails too, the error below still answers 5xx
            throw error
        }
    }

    private func answer(_ status: HTTPResponse.Status, _ outcome: String, environments: [String]) throws -> Response {
        try JSONBody.response(Answer(outcome: outcome, starting: environments), status: status)
    }

    /// The answer to a delivery: what was done, and the environments whose runs are starting.
    struct Answer: Encodable {
        let outcome: String
        let starting: [String]
    }

    /// A run being started for a delivery.
    struct Start: Sendable {
        let environment: String
        let sha: String
        let pid: Int32
        let log: URL
    }

    /// Follows a started run's process until it records its run (audited, the delivery's outcome updated) or ends
    /// without one: then the delivery is forgotten, so that the forge's redelivery can try again, and the server's
    /// log says why (an unknown commit, a pipeline that does not load).
    private func watch(_ start: Start, kind: ForgeSpec.Kind, delivery: String, address: String?) {
        Task {
            do {
                let run = try await starter.commitRun(pid: start.pid, log: start.log, environment: start.environment)
                try store.audit(actor: "\(kind.rawValue)-webhook", identity: .webhook, action: "run started", target: "run \(run)",
                    detail: "\(start.environment) at \(start.sha.prefix(12)), delivery \(delivery)", address: address)
                try store.setDeliveryOutcome(forge: kind.rawValue, id: delivery, outcome: "run \(run) of \(start.environment) started for \(start.sha.prefix(12))")
            } catch {
                let why = (error as? HTTPError)?.body ?? "\(error)"
                recent.withLock { _ = $0.removeValue(forKey: "\(start.environment) \(start.sha)") }
                if why.contains("already deploys") {
                    Self.logger.info("\(kind.rawValue) delivery \(delivery): \(start.environment): \(why)")
                    return
                }
                Self.logger.error("\(kind.rawValue) delivery \(delivery): the run of \(start.environment) at \(start.sha.prefix(12)) did not start: \(why)")
                do {
                    try store.audit(actor: "\(kind.rawValue)-webhook", identity: .webhook, action: "run start failed",
                        target: start.environment, detail: "\(start.sha.prefix(12)), delivery \(delivery): \(why)", address: address)
                    try store.forgetDelivery(forge: kind.rawValue, id: delivery)
                } catch {
                    Self.logger.error("\(kind.rawValue) delivery \(delivery): recording that its run did not start failed too: \(error)")
                }
            }
        }
    }

    /// What a verified delivery asks, and what was done about it.
    private func handle(_ kind: ForgeSpec.Kind, forge: ForgeSpec, event: String, body: [UInt8]) async throws -> (HTTPResponse.Status, String, [Start]) {
        let isPush = switch kind {
        case .github, .gitea: event == "push"
        case .gitlab: event == "Push Hook"
        }
        if kind == .github && event == "ping" { return (.ok, "pong: the webhook reaches this pipeline", []) }
        guard isPush else { return (.accepted, "\(event) events start nothing; only pushes do", []) }
        guard let payload = Self.payload(body) else {
            throw HTTPError(.badRequest, message: "the push delivery's body is not a JSON object (nor a form with one in `payload`)")
        }
        let repository = kind == .gitlab
            ? (payload["project"] as? [String: Any])?["path_with_namespace"] as? String
            : (payload["repository"] as? [String: Any])?["full_name"] as? String
        guard let repository, repository.lowercased() == forge.repository.lowercased() else {
            return (.unprocessableContent, "the push is to \(repository ?? "an unnamed repository"), not this pipeline's \(forge.repository); nothing started", [])
        }
        guard let ref = payload["ref"] as? String, let after = (payload["after"] as? String)?.lowercased() else {
            throw HTTPError(.badRequest, message: "the push delivery has no ref or after")
        }
        guard ref.hasPrefix("refs/heads/") else { return (.accepted, "\(ref) is not a branch; tags start nothing", []) }
        let branch = String(ref.dropFirst("refs/heads/".count))
        if (payload["deleted"] as? Bool) == true || (!after.isEmpty && after.allSatisfy({ $0 == "0" })) {
            return (.accepted, "branch \(branch) was deleted; nothing to deploy", [])
        }
        guard after.count == 40, after.allSatisfy(\.isHexDigit) else {
            throw HTTPError(.badRequest, message: "the push's after '\(after.prefix(64))' is not a commit SHA")
        }
        let environments = settings.manifest.environments.filter { $0.branch == branch }.map(\.name)
        guard !environments.isEmpty else { return (.accepted, "no environment deploys branch \(branch)", []) }
        let pusher = Self.pusher(kind, payload)
        var started: [Start] = []
        var skipped: [String] = []
        for environment in environments {
            if let earlier = try store.deployingRuns(environment: environment, sha: after).first {
                skipped.append("\(environment): run \(earlier.id) already deploys \(after.prefix(12))")
                continue
            }
            // Two deliveries of one commit a moment apart (a push to two branches): the first run's process may not
            // have recorded its run yet, so the server remembers what it started for a while.
            let key = "\(environment) \(after)"
            let fresh = recent.withLock { recent in
                recent = recent.filter { Date().timeIntervalSince($0.value) < 300 }
                guard recent[key] == nil else { return false }
                recent[key] = Date()
                return true
            }
            guard fresh else {
                skipped.append("\(environment): a run of \(after.prefix(12)) was just started")
                continue
            }
            do {
                let (pid, log) = try starter.startCommitRun(environment: environment, sha: after, startedBy: "\(kind.rawValue):\(pusher)")
                started.append(Start(environment: environment, sha: after, pid: pid, log: log))
            } catch {
                recent.withLock { _ = $0.removeValue(forKey: key) }
                throw error
            }
        }
        var outcome = started.isEmpty
            ? "nothing started"
            : "starting \(started.map(\.environment).joined(separator: ", ")) for \(after.prefix(12)) (\(branch), pushed by \(pusher))"
        if !skipped.isEmpty { outcome += "; " + skipped.joined(separator: "; ") }
        return (started.isEmpty ? .ok : .accepted, outcome, started)
    }

    static func verified(_ kind: ForgeSpec.Kind, _ headers: HTTPFields, body: [UInt8], secret: String) -> Bool {
        switch kind {
        case .github:
            guard let signature = headers[HTTPField.Name("X-Hub-Signature-256")!] else { return false }
            return ConstantTime.equal(signature.lowercased(), "sha256=" + HMACSHA256.authenticate(body, key: Array(secret.utf8)).hexString)
        case .gitea:
            guard let signature = headers[HTTPField.Name("X-Gitea-Signature")!] ?? headers[HTTPField.Name("X-Forgejo-Signature")!] else { return false }
            return ConstantTime.equal(signature.lowercased(), HMACSHA256.authenticate(body, key: Array(secret.utf8)).hexString)
        case .gitlab:
            guard let token = headers[HTTPField.Name("X-Gitlab-Token")!] else { return false }
            return ConstantTime.equal(SHA256.hex(token), SHA256.hex(secret))  // equal lengths: the hashes
        }
    }

    private static func event(_ kind: ForgeSpec.Kind, _ headers: HTTPFields) -> String {
        let name = switch kind {
        case .github: "X-GitHub-Event"
        case .gitlab: "X-Gitlab-Event"
        case .gitea: "X-Gitea-Event"
        }
        return String((headers[HTTPField.Name(name)!] ?? "unnamed").prefix(100))
    }

    private static func deliveryID(_ kind: ForgeSpec.Kind, _ headers: HTTPFields) -> String? {
        let names = switch kind {
        case .github: ["X-GitHub-Delivery"]
        // GitLab's Idempotency-Key stays the same across retries of one event; X-Gitlab-Webhook-UUID names the hook,
        // not the event, so it is no delivery id.
        case .gitlab: ["Idempotency-Key", "X-Gitlab-Event-UUID"]
        case .gitea: ["X-Gitea-Delivery", "X-Forgejo-Delivery"]
        }
        return names.lazy.compactMap { headers[HTTPField.Name($0)!] }.first
    }

    /// The event: the body as JSON, or (GitHub's default content type) the JSON in the form field `payload`.
    static func payload(_ body: [UInt8]) -> [String: Any]? {
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] { return object }
        let form = String(decoding: body, as: UTF8.self)
        guard form.hasPrefix("payload=") else { return nil }
        let value = form.dropFirst("payload=".count).split(separator: "&", maxSplits: 1).first.map(String.init) ?? ""
        guard let json = value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    }

    private static func pusher(_ kind: ForgeSpec.Kind, _ payload: [String: Any]) -> String {
        let name: String? = switch kind {
        case .github: (payload["pusher"] as? [String: Any])?["name"] as? String
        case .gitlab: payload["user_username"] as? String
        case .gitea: ((payload["pusher"] as? [String: Any])?["login"] ?? (payload["pusher"] as? [String: Any])?["username"]) as? String
        }
        return String((name ?? "someone").filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }.prefix(64))
    }

    private static func declaration(_ kind: ForgeSpec.Kind) -> String {
        switch kind {
        case .github: "GitHub(\"OWNER/NAME\", webhookSecret: ...)"
        case .gitlab: "GitLab(\"GROUP/NAME\", webhookToken: ...)"
        case .gitea: "Gitea(\"OWNER/NAME\", webhookSecret: ...)"
        }
    }
}
