import Foundation
import Hashing
import HTTPTypes
import Hummingbird
import Logging
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

    /// The answer to a delivery: always JSON, saying what was done.
    struct Answer: ResponseEncodable {
        let outcome: String
        let runs: [String]
    }

    private func receive(_ kind: ForgeSpec.Kind, _ request: Request, context: ServerContext) async throws -> Response {
        guard let forge = settings.manifest.forge(kind) else {
            throw HTTPError(.notFound, message: "this pipeline names no \(kind.rawValue) repository; declare one in pipelines/ (\(Self.declaration(kind)))")
        }
        guard let reference = forge.webhookSecret else {
            throw HTTPError(.unauthorized, message: "this pipeline's \(kind.rawValue) repository has no webhook secret, so no delivery can be verified; set webhookSecret")
        }
        // GitHub caps a delivery at 25 MB.
        let body = Array(buffer: try await request.body.collect(upTo: 25 << 20))
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
        let delivery = Self.deliveryID(kind, request.headers) ?? SHA256.hash(body).hexString
        guard try store.recordDelivery(forge: kind.rawValue, id: delivery, event: event, outcome: "received") else {
            let earlier = try store.deliveryOutcome(forge: kind.rawValue, id: delivery) ?? ""
            return try answer(.ok, "delivery \(delivery) was received before (\(earlier)); nothing new started", runs: [])
        }
        do {
            let (status, outcome, runs) = try await handle(kind, forge: forge, event: event, body: body)
            try store.setDeliveryOutcome(forge: kind.rawValue, id: delivery, outcome: outcome)
            Self.logger.info("\(kind.rawValue) delivery \(delivery) (\(event)): \(outcome)")
            if !runs.isEmpty {
                try store.audit(actor: "\(kind.rawValue)-webhook", identity: .webhook, action: "run started", target: runs.joined(separator: ", "),
                    detail: "delivery \(delivery): \(outcome)", address: context.clientAddress)
            }
            return try answer(status, outcome, runs: runs)
        } catch {
            // Nothing was done: a redelivery may try again.
            try? store.forgetDelivery(forge: kind.rawValue, id: delivery)  // if this fails too, the error below still answers 5xx
            throw error
        }
    }

    private func answer(_ status: HTTPResponse.Status, _ outcome: String, runs: [String]) throws -> Response {
        let data = try JSONEncoder().encode(["outcome": outcome, "runs": runs.joined(separator: " ")])
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// What a verified delivery asks, and what was done about it.
    private func handle(_ kind: ForgeSpec.Kind, forge: ForgeSpec, event: String, body: [UInt8]) async throws -> (HTTPResponse.Status, String, [String]) {
        let isPush = switch kind {
        case .github, .gitea: event == "push"
        case .gitlab: event == "Push Hook"
        }
        if kind == .github && event == "ping" { return (.ok, "pong: the webhook reaches this pipeline", []) }
        guard isPush else { return (.accepted, "\(event) events start nothing; only pushes do", []) }
        guard let payload = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw HTTPError(.badRequest, message: "the push delivery's body is not a JSON object")
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
        if (payload["deleted"] as? Bool) == true || after.allSatisfy({ $0 == "0" }) {
            return (.accepted, "branch \(branch) was deleted; nothing to deploy", [])
        }
        guard after.count == 40, after.allSatisfy(\.isHexDigit) else {
            throw HTTPError(.badRequest, message: "the push's after '\(after.prefix(64))' is not a commit SHA")
        }
        let environments = settings.manifest.environments.filter { $0.branch == branch }.map(\.name)
        guard !environments.isEmpty else { return (.accepted, "no environment deploys branch \(branch)", []) }
        let pusher = Self.pusher(kind, payload)
        var started: [String] = []
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
            try starter.startCommitRun(environment: environment, sha: after, startedBy: "\(kind.rawValue):\(pusher)")
            started.append(environment)
        }
        var outcome = started.isEmpty ? "nothing started" : "started \(started.joined(separator: ", ")) for \(after.prefix(12)) (\(branch), pushed by \(pusher))"
        if !skipped.isEmpty { outcome += "; " + skipped.joined(separator: "; ") }
        return (started.isEmpty ? .ok : .accepted, outcome, started)
    }

    static func verified(_ kind: ForgeSpec.Kind, _ headers: HTTPFields, body: [UInt8], secret: String) -> Bool {
        switch kind {
        case .github:
            guard let signature = headers[HTTPField.Name("X-Hub-Signature-256")!] else { return false }
            return ConstantTime.equal(signature, "sha256=" + HMACSHA256.authenticate(body, key: Array(secret.utf8)).hexString)
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
        case .gitlab: ["X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID"]
        case .gitea: ["X-Gitea-Delivery", "X-Forgejo-Delivery"]
        }
        return names.lazy.compactMap { headers[HTTPField.Name($0)!] }.first.map { String($0.prefix(200)) }
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
