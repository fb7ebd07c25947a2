import Foundation
import Hashing
import Hummingbird
import PipelineDSL
import Git
import Runner
import StageContract

/// Sign-in, and every state-changing request: authenticated, authorised, CSRF-checked, and audited.
extension Routes {
    func signInPage(_ request: Request, context: ServerContext, problem: String?, status: HTTPResponse.Status = .ok) throws -> Response {
        let next = Self.safeNext(request.uri.queryParameters.get("next").map { String($0) })
        let body: HTML = """
            \(problem.map { HTML("<p class=\"error\">\($0)</p>") } ?? "")
            <form method="post" action="/signin"><input type="hidden" name="next" value="\(next)">
            <label>User <input name="user" autocomplete="username" required></label>
            <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
            <button>Sign in</button></form>
            """
        return Page.render("Sign in", caller: nil, body: body, status: status)
    }

    /// Only paths on this server (no scheme, host or `//`).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        else { return "/environments" }
        return next
    }

    func signIn(_ request: Request, context: ServerContext) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        if let origin = request.headers[.origin], !identity.sameOrigin(origin, request: request) {
            throw HTTPError(.forbidden, message: "the sign-in comes from another site (\(origin))")
        }
        let name = fields["user"] ?? "", password = fields["password"] ?? ""
        let keys = SignInLimiter.keys(address: context.clientAddress, user: name)
        if let wait = limiter.retryAfter(keys) {
            var response = try signInPage(request, context: context, problem: "Too many failed sign-ins; try again in \(wait) s.", status: .tooManyRequests)
            response.headers[.retryAfter] = String(wait)
            return response
        }
        guard let user = try store.authenticate(name, password: password) else {
            limiter.failed(keys)
            try auditFailedSignIn(name, address: context.clientAddress)
            return try signInPage(request, context: context, problem: "Wrong user name or password.", status: .unauthorized)
        }
        limiter.succeeded(keys)
        let session = try store.createSession(user: user.name, lifetime: settings.sessionLifetime)
        try store.audit(actor: user.name, identity: .serverUser, action: "sign-in", address: context.clientAddress)
        var response = Response.redirect(to: Self.safeNext(fields["next"]), type: .normal)
        response.setCookie(
            Cookie(
                name: Identity.sessionCookie, value: session.id, maxAge: Int(settings.sessionLifetime), path: "/", secure: settings.secureCookies,
                httpOnly: true, sameSite: .strict))
        return response
    }

    func signOut(_ request: Request, context: ServerContext) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .viewer)
        if let session = caller.session { try store.endSession(session) }
        try store.audit(actor: caller.name, identity: caller.kind, action: "sign-out", address: context.clientAddress)
        var response = Response.redirect(to: "/signin", type: .normal)
        response.setCookie(Cookie(name: Identity.sessionCookie, value: "", maxAge: 0, path: "/", secure: settings.secureCookies, httpOnly: true, sameSite: .strict))
        return response
    }

    // MARK: Runs

    func startRun(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .deployer)
        guard let environment = fields["environment"], !environment.isEmpty else {
            throw HTTPError(.badRequest, message: "field 'environment' is missing: name one of \(settings.manifest.environments.map(\.name).joined(separator: ", "))")
        }
        guard settings.manifest.environments.contains(where: { $0.name == environment }) else {
            throw HTTPError(.badRequest, message: "field 'environment': there is no environment '\(environment)'; the pipeline has \(settings.manifest.environments.map(\.name).joined(separator: ", "))")
        }
        let sha = fields["sha"]?.lowercased()
        if let sha, !(7...40).contains(sha.count) || !sha.allSatisfy(\.isHexDigit) {
            throw HTTPError(.badRequest, message: "field 'sha': '\(sha)' is not a commit SHA (7 to 40 hexadecimal digits)")
        }
        let id = try await starter.start(environment: environment, sha: sha, caller: caller)
        try store.audit(actor: caller.name, identity: caller.kind, action: "run.started", target: "run \(id)", detail: "\(environment)\(sha.map { " at \($0)" } ?? "")", address: context.clientAddress)
        if api { return try JSONBody.response(RunView.detailed(try store.run(id)!, store: store, plan: plans.plan(of: id, store: store)), status: .created) }
        return Response.redirect(to: "/runs/\(id)", type: .normal)
    }

    func cancel(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .deployer)
        let run = try runRecord(context)
        guard run.shownStatus.hasOwner, let owner = run.owner else {
            let hint = run.shownStatus == .waiting ? "; reject it at its approval instead" : ""
            throw HTTPError(.conflict, message: "run \(run.id) is \(run.shownStatus.rawValue): there is no process to cancel\(hint)")
        }
        guard owner.host == ProcessIdentity.hostName, OwnerLiveness.isAlive(run) else {
            throw HTTPError(.conflict, message: "run \(run.id) is owned by \(owner), which this server cannot signal")
        }
        // As Ctrl-C: the runner stops its stages and records the run cancelled (rolling back as its plan says).
        guard kill(owner.pid, SIGTERM) == 0 else {
            throw HTTPError(.conflict, message: "could not signal \(owner): \(String(cString: strerror(errno)))")
        }
        try store.audit(actor: caller.name, identity: caller.kind, action: "cancelled", target: "run \(run.id)", address: context.clientAddress)
        if api { return try JSONBody.response(RunView(run), status: .accepted) }
        return Response.redirect(to: "/runs/\(run.id)", type: .normal)
    }

    func resume(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .deployer)
        let run = try runRecord(context)
        guard run.shownStatus == .interrupted || run.shownStatus == .approved else {
            throw HTTPError(.conflict, message: "run \(run.id) is \(run.shownStatus.rawValue); only an interrupted or approved run can be resumed")
        }
        try await starter.resume(run, caller: caller)
        try store.audit(actor: caller.name, identity: caller.kind, action: "resumed", target: "run \(run.id)", address: context.clientAddress)
        if api { return try JSONBody.response(RunView(try store.run(run.id) ?? run), status: .accepted) }
        return Response.redirect(to: "/runs/\(run.id)", type: .normal)
    }

    // MARK: Approvals

    struct ApprovalView: Encodable {
        let run: Int
        let environment: String
        let stage: String
        let message: String?
        let required: Int
        let approvers: [String]
        let approvedBy: [String]
        let startedBy: String?
        let selfApproval: Bool
        let expiresAt: Date?
        let services: [Release]

        struct Release: Encodable {
            let service: String
            let liveSha: String?
            let liveDigest: String?
            let newSha: String?
            let newDigest: String?
            /// The commits the new SHA adds to the live one, newest first (from the mirror; at most 50).
            let commits: [CommitSummary]
        }
    }

    private func approvalView(_ gate: WaitingGate) throws -> ApprovalView {
        let folder = RunFolder(root: store.runFolder(gate.run.id))
        var services: [ApprovalView.Release] = []
        var ranges: [String: [CommitSummary]] = [:]
        for service in Set(gate.plan.stages.compactMap(\.service)).sorted() {
            let live = try store.deployments(service: service, environment: gate.run.environment, limit: 1).first
            let push = gate.plan.stages.first { $0.kind == .push && $0.service == service }
            let digest = try push.flatMap { try folder.publishedOutputs(of: $0.id)?["digest"] }
            var commits: [CommitSummary] = []
            if let source = gate.run.source, let sha = gate.run.sha {
                let key = live?.sha ?? ""
                if ranges[key] == nil {
                    // The mirror is read as it is; a commit it lacks shows no range rather than failing the page.
                    ranges[key] = (try? GitSource(url: source, cache: settings.home.appending(path: "cache/git")).commits(from: live?.sha, to: sha)) ?? []
                }
                commits = ranges[key] ?? []
            }
            services.append(.init(service: service, liveSha: live?.sha, liveDigest: live?.digest, newSha: gate.run.sha, newDigest: digest, commits: commits))
        }
        return ApprovalView(
            run: gate.run.id, environment: gate.run.environment, stage: gate.stage, message: gate.spec.message, required: gate.spec.required,
            approvers: gate.spec.approvers, approvedBy: gate.approvers, startedBy: gate.requester, selfApproval: gate.spec.allowSelfApproval,
            expiresAt: gate.expiresAt, services: services)
    }

    func approval(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let run = try runRecord(context)
        try WaitingGate.expireOverdue(store: store, environment: run.environment)
        guard let gate = try WaitingGate.of(try store.run(run.id) ?? run, store: store) else {
            throw HTTPError(.notFound, message: "run \(run.id) does not wait for approval: it is \(run.shownStatus.rawValue)")
        }
        let view = try approvalView(gate)
        if api { return try JSONBody.response(view) }
        let rows = view.services.map { release -> HTML in
            let commits = release.commits.map { commit -> HTML in "<li><code>\(Page.short(commit.sha))</code> \(commit.subject) <small>(\(commit.author))</small></li>" }
            return "<tr><td>\(release.service)</td><td><code>\(Page.short(release.liveSha))</code></td><td><code>\(release.liveDigest.map { String($0.prefix(19)) } ?? "-")</code></td><td><code>\(Page.short(release.newSha))</code></td><td><code>\(release.newDigest.map { String($0.prefix(19)) } ?? "-")</code></td><td>\(commits.isEmpty ? HTML("-") : HTML("<ul>\(commits)</ul>"))</td></tr>"
        }
        var body: [HTML] = [
            "<p>Run <a href=\"/runs\(HTML("/"))\(view.run)\">\(view.run)</a> of \(view.environment) waits at <code>\(view.stage)</code>\(view.message.map { HTML(": \($0)") } ?? "").</p>",
            "<p>Needs \(view.required) of: \(view.approvers.joined(separator: ", "))\(view.selfApproval ? "" : view.startedBy.map { " (not \($0), who started it)" } ?? "") · approved so far by: \(view.approvedBy.isEmpty ? "nobody yet" : view.approvedBy.joined(separator: ", "))\(view.expiresAt.map { HTML(" · expires \(Page.time($0))") } ?? "")</p>",
            "<table><tr><th>Service</th><th>Live SHA</th><th>Live digest</th><th>New SHA</th><th>New digest</th><th>Commits</th></tr>\(rows.isEmpty ? HTML("<tr><td colspan=\"6\">This run deploys no services.</td></tr>") : HTML(rows))</table>",
        ]
        // What it would change, as worked out when it stopped here (`pipeline diff`).
        if let changes = RunFolder(root: store.runFolder(run.id)).gateChanges() {
            let unchanged = changes.filter(\.unchanged).map(\.service)
            let blocks = changes.filter { !$0.unchanged }.map { change -> HTML in
                let definition = change.taskDefinitionDiff.isEmpty
                    ? "task definition: as \(change.liveTaskDefinition ?? "-") (reused)" : change.taskDefinitionDiff.joined(separator: "\n")
                let extra = (change.dns.map { "dns: \($0)" } + change.notes.map { "note: \($0)" }).joined(separator: "\n")
                return "<h3>\(change.service)</h3><pre>\(definition)\(extra.isEmpty ? "" : "\n" + extra)</pre>"
            }
            body.append("<h2>What it would change</h2>\(HTML(blocks))<p>Left as they are: \(unchanged.isEmpty ? "none" : unchanged.joined(separator: ", "))</p>")
        }
        if gate.refusal(of: caller.name, to: .approve) == nil {
            body.append(Page.form("/runs/\(run.id)/approve", caller: caller, button: "Approve", fields: "<label>Comment <input name=\"comment\"></label>"))
        }
        if gate.refusal(of: caller.name, to: .reject) == nil {
            body.append(Page.form("/runs/\(run.id)/reject", caller: caller, button: "Reject", fields: "<label>Reason <input name=\"reason\" required></label>", danger: true))
        } else {
            body.append("<p>\(caller.name) is not among this gate's approvers.</p>")
        }
        return Page.render("Approval of run \(run.id)", caller: caller, body: HTML(body))
    }

    func decide(_ request: Request, context: ServerContext, api: Bool, _ decision: WaitingGate.Decision) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        // Any signed-in role may be a gate's approver; the gate's own list decides below.
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .viewer)
        let run = try runRecord(context)
        let gate: WaitingGate
        do {
            gate = try WaitingGate.find(run.environment, run: run.id, store: store)
        } catch let refusal as ApprovalRefusal {
            throw HTTPError(.conflict, message: refusal.description)
        }
        if let refusal = gate.refusal(of: caller.name, to: decision) { throw HTTPError(.forbidden, message: refusal.description) }
        func masked(_ text: String) async throws -> String {
            do {
                return try await DecisionMask.masked(String(text.prefix(2000)), plan: gate.plan, environment: settings.runEnvironment)
            } catch let error as DecisionMaskError {
                throw HTTPError(.serviceUnavailable, message: error.description)
            }
        }
        var outcome: String
        switch decision {
        case .approve:
            var comment: String?
            if let text = fields["comment"], !text.isEmpty { comment = try await masked(text) }
            let result = try store.approve(run: run.id, stage: gate.stage, user: caller.name, comment: comment, required: gate.spec.required, continuingAs: nil)
            switch result {
            case .recorded(let count, let required): outcome = "approved: \(count) of \(required); waiting for \(required - count) more"
            case .alreadyApproved(let count, let required): outcome = "\(caller.name) had approved already (\(count) of \(required))"
            case .releasedToWaitingProcess(let approvers): outcome = "approved by \(approvers.joined(separator: ", ")); the waiting process continues it"
            case .released(let approvers, _):
                outcome = "approved by \(approvers.joined(separator: ", ")); continuing"
                try starter.continueApproved(try store.run(run.id) ?? run, caller: caller)
            }
            try store.audit(actor: caller.name, identity: caller.kind, action: "approved", target: "run \(run.id)", detail: comment, address: context.clientAddress)
        case .reject:
            guard let reason = fields["reason"].map({ $0.trimmingCharacters(in: .whitespaces) }), !reason.isEmpty else {
                throw HTTPError(.badRequest, message: "field 'reason' is missing: say why the run is rejected")
            }
            let masked = try await masked(reason)
            try store.reject(run: run.id, stage: gate.stage, user: caller.name, reason: masked)
            try store.audit(actor: caller.name, identity: caller.kind, action: "rejected", target: "run \(run.id)", detail: masked, address: context.clientAddress)
            outcome = "rejected by \(caller.name)"
        }
        struct Decided: Encodable { let run: Int; let outcome: String }
        if api { return try JSONBody.response(Decided(run: run.id, outcome: outcome)) }
        return Response.redirect(to: "/runs/\(run.id)", type: .normal)
    }

    // MARK: Audit

    func audit(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let query = request.uri.queryParameters
        let after = try Self.number(query.get("after"), named: "after", in: 0...Int.max) ?? 0
        if let format = query.get("format"), !["json", "jsonl"].contains(format) {
            throw HTTPError(.badRequest, message: "query parameter 'format' must be json or jsonl, not '\(format)'")
        }
        if api {
            let entries = try store.auditEntries(after: after, limit: try Self.number(query.get("limit"), named: "limit", in: 1...100_000) ?? 10000)
            if query.get("format") == "jsonl" || request.headers[.accept]?.contains("application/x-ndjson") == true {
                let lines = try entries.map { String(decoding: try JSONEncoder.compact.encode($0), as: UTF8.self) }.joined(separator: "\n")
                return Self.file(lines.isEmpty ? "" : lines + "\n", type: "application/x-ndjson")
            }
            return try JSONBody.response(entries)
        }
        let entries = try store.auditEntries(limit: 500, newestFirst: true)
        let rows = entries.map { entry -> HTML in
            "<tr><td>\(entry.id)</td><td>\(Page.time(entry.at))</td><td>\(entry.actor)</td><td>\(entry.identity.rawValue)</td><td>\(entry.action)</td><td>\(entry.target)</td><td>\(entry.detail)</td><td>\(entry.address)</td></tr>"
        }
        return Page.render(
            "Audit", caller: caller,
            body: "<p>Every action, newest first (the latest 500). <a href=\"/api/v1/audit?format=jsonl\">Export as JSON lines</a></p><table><tr><th>#</th><th>When</th><th>Who</th><th>Identity</th><th>Action</th><th>About</th><th>Detail</th><th>Address</th></tr>\(rows)</table>")
    }
}

/// `pipeline login`: who a token is, and a token made for a user who proves their password.
extension Routes {
    struct WhoAmI: Encodable {
        let user: String
        let role: Role
        let identity: IdentityKind
    }

    func whoami(_ request: Request, context: ServerContext) throws -> Response {
        let caller = try viewer(request, context: context, api: true)
        return try JSONBody.response(WhoAmI(user: caller.name, role: caller.user.role, identity: caller.kind))
    }

    /// Makes an API token for the user whose name and password the body carries (rate-limited like sign-in); the
    /// token is in the answer only.
    func createToken(_ request: Request, context: ServerContext) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        guard let name = fields["user"], let password = fields["password"] else {
            throw HTTPError(.badRequest, message: "fields 'user' and 'password' are required")
        }
        let keys = SignInLimiter.keys(address: context.clientAddress, user: name)
        if let wait = limiter.retryAfter(keys) {
            throw HTTPError(.tooManyRequests, headers: [.retryAfter: String(wait)], message: "too many failed sign-ins; try again in \(wait) s")
        }
        guard let user = try store.authenticate(name, password: password) else {
            limiter.failed(keys)
            try auditFailedSignIn(name, address: context.clientAddress)
            throw HTTPError(.unauthorized, message: "wrong user name or password")
        }
        limiter.succeeded(keys)
        let label = String((fields["name"] ?? "cli").prefix(100))
        let (record, secret) = try store.createToken(user: user.name, name: label)
        try store.audit(actor: user.name, identity: .serverUser, action: "token.created", target: "user \(user.name)", detail: "token \(record.id) (\(label))", address: context.clientAddress)
        struct Made: Encodable { let id: Int; let user: String; let token: String }
        return try JSONBody.response(Made(id: record.id, user: user.name, token: secret), status: .created)
    }
}

extension Routes {
    /// A failed sign-in, in the audit: the name when it is a user's; an unknown name is often a password typed into
    /// the wrong field, so it is not kept.
    func auditFailedSignIn(_ name: String, address: String?) throws {
        let wellFormed = (try? StateStore.checkUserName(name)) != nil
        let known = wellFormed ? try store.user(name) != nil : false
        try store.audit(actor: known ? name : "(unknown user)", identity: .serverUser, action: "sign-in.failed", address: address)
    }
}
