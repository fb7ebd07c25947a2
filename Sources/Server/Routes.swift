import Foundation
import Hashing
import HTTPTypes
import Hummingbird
import NIOCore
import PipelineDSL
import Runner
import StageContract
import Synchronization

/// Every page and its JSON twin under /api/v1/.
struct Routes: Sendable {
    let settings: ServerSettings
    let store: StateStore
    let identity: Identity
    let starter: RunStarter
    let limiter = SignInLimiter()
    let plans = PlanCache()
    let reconciler = Reconciler()
    let liveCheck: LiveCheck

    func register(_ router: Router<ServerContext>) {
        // Every GET route answers HEAD too (the guard drops the body).
        func get<Output: ResponseGenerator>(_ path: RouterPath, _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Output) {
            router.get(path, use: handler)
            router.head(path, use: handler)
        }
        get("/") { _, _ in Response.redirect(to: "/environments", type: .found) }
        get("/healthz") { _, _ in "ok\n" }
        get("/static/style.css") { _, _ in Self.file(StaticFiles.style, type: "text/css; charset=utf-8") }
        get("/static/live.js") { _, _ in Self.file(StaticFiles.live, type: "text/javascript; charset=utf-8") }
        let document = OpenAPI.document(environments: settings.manifest.environments.map(\.name), services: settings.manifest.services.map(\.name))
        get("/api/v1/openapi.json") { _, _ in Self.file(document, type: "application/json") }

        get("/signin") { request, context in try signInPage(request, context: context, problem: nil) }
        router.post("/signin") { request, context in try await signIn(request, context: context) }
        router.post("/signout") { request, context in try await signOut(request, context: context) }

        for api in [false, true] {
            let prefix = api ? "/api/v1" : ""
            get("\(prefix)/environments") { request, context in try await environments(request, context: context, api: api) }
            get("\(prefix)/runs") { request, context in try runs(request, context: context, api: api) }
            router.post("\(prefix)/runs") { request, context in try await startRun(request, context: context, api: api) }
            get("\(prefix)/runs/{id}") { request, context in try runPage(request, context: context, api: api) }
            router.post("\(prefix)/runs/{id}/cancel") { request, context in try await cancel(request, context: context, api: api) }
            router.post("\(prefix)/runs/{id}/resume") { request, context in try await resume(request, context: context, api: api) }
            get("\(prefix)/runs/{id}/approval") { request, context in try approval(request, context: context, api: api) }
            router.post("\(prefix)/runs/{id}/approve") { request, context in try await decide(request, context: context, api: api, .approve) }
            router.post("\(prefix)/runs/{id}/reject") { request, context in try await decide(request, context: context, api: api, .reject) }
            get("\(prefix)/audit") { request, context in try audit(request, context: context, api: api) }
            get("\(prefix)/stats") { request, context in try stats(request, context: context, api: api) }
            get("\(prefix)/services/{name}") { request, context in try servicePage(request, context: context, api: api) }
            router.post("\(prefix)/services/{name}/rollback") { request, context in try await rollback(request, context: context, api: api) }
        }
        get("/api/v1/whoami") { request, context in try whoami(request, context: context) }
        router.post("/api/v1/tokens") { request, context in try await createToken(request, context: context) }
        get("/services/{name}/rollback") { request, context in try await rollbackConfirmation(request, context: context, api: false) }
        get("/api/v1/services/{name}/rollback") { request, context in try await rollbackConfirmation(request, context: context, api: true) }
        get("/api/v1/runs/{id}/events") { request, context in try runEvents(request, context: context) }
        get("/api/v1/runs/{id}/stages/{stage}/log") { request, context in try logEvents(request, context: context) }
        get("/runs/{id}/stages/{stage}/log") { request, context in try logText(request, context: context) }
        get("/runs/{id}/artifacts/{stage}/**") { request, context in try artifact(request, context: context) }
    }

    // MARK: Reading

    /// The caller of a page or API read: pages send the signed-out to the sign-in page, the API answers 401.
    func viewer(_ request: Request, context: ServerContext, api: Bool) throws -> Caller {
        if let caller = try identity.caller(request, context: context) { return caller }
        if api { throw HTTPError(.unauthorized, message: "sign in first (a session, or `Authorization: Bearer TOKEN`)") }
        var target = request.uri.path
        if let query = request.uri.query { target += "?" + query }
        throw HTTPError(.seeOther, headers: [.location: "/signin?next=\(urlPart(target))"])
    }

    func runRecord(_ context: ServerContext) throws -> RunRecord {
        guard let text = context.parameters.get("id"), let id = Int(text), id > 0 else {
            throw HTTPError(.notFound, message: "there is no run '\(context.parameters.get("id") ?? "")': runs are numbered from 1")
        }
        reconciler.reconcile(store)
        guard let run = try store.run(id) else { throw HTTPError(.notFound, message: "there is no run \(id)") }
        return run
    }

    func environments(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        struct EnvironmentView: Encodable {
            let name: String
            let branch: String
            let gated: Bool
            let live: [LiveView]
            let active: [RunView]
            /// Services ECS runs on another task definition than the one `pipeline` last deployed (or never did).
            let drift: [Drift]
            /// Why ECS could not be asked, when it could not.
            let ecsProblem: String?
        }
        struct Drift: Encodable {
            let service: String
            let recorded: String?
            let running: String
        }
        var views: [EnvironmentView] = []
        for environment in settings.manifest.environments {
            let stages = settings.manifest.stages[environment.name] ?? []
            let deployed = stages.compactMap { stage -> (name: String, cluster: String, ecsService: String)? in
                if case .updateService(let spec) = stage.spec { return (spec.service, spec.cluster, spec.ecsService) }
                return nil
            }
            let ecs = deployed.isEmpty ? LiveCheck.Answer(running: [:]) : await liveCheck.running(in: environment, services: deployed)
            var live: [LiveView] = []
            for service in settings.manifest.services.map(\.name) where stages.contains(where: { $0.service == service }) {
                guard let record = try store.deployments(service: service, environment: environment.name, limit: 1).first else { continue }
                let run = try record.run.flatMap { try store.run($0) }
                live.append(
                    LiveView(
                        environment: environment.name, service: service, kind: record.shownKind, sha: record.sha,
                        subject: run?.sha == record.sha ? run?.commit?.subject : nil, image: record.image, digest: record.digest,
                        taskDefinitionArn: record.taskDefinitionArn, at: record.createdAt, run: record.run, trigger: record.trigger,
                        approvedBy: record.approvedBy, startedBy: run?.user))
            }
            let active = try store.runs(environment: environment.name, limit: 50).filter { !$0.shownStatus.isFinal }.map(RunView.init)
            var drift: [Drift] = []
            for (service, arn) in ecs.running.sorted(by: { $0.key < $1.key }) {
                let recorded = live.first { $0.service == service }?.taskDefinitionArn
                if recorded != arn { drift.append(Drift(service: service, recorded: recorded, running: arn)) }
            }
            views.append(
                EnvironmentView(
                    name: environment.name, branch: environment.branch, gated: stages.contains { $0.kind == .approval }, live: live, active: active,
                    drift: drift, ecsProblem: ecs.problem))
        }
        if api { return try JSONBody.response(views) }
        var body: [HTML] = []
        for view in views {
            body.append("<h2 id=\"env-\(view.name)\">\(view.name)</h2><p>branch <code>\(view.branch)</code>\(view.gated ? HTML(" · approval required") : "")</p>")
            if caller.may(.deployer) {
                body.append(Page.form("/runs", caller: caller, button: "Run \(view.name)", fields: "<input type=\"hidden\" name=\"environment\" value=\"\(view.name)\">"))
            }
            if view.live.isEmpty {
                body.append("<p>Nothing deployed by pipeline yet.</p>")
            } else {
                let rows = view.live.map { live -> HTML in
                    "<tr><td><a href=\"/services/\(urlPart(live.service))\">\(live.service)</a></td><td><code>\(Page.short(live.sha))</code> \(live.subject)</td><td><code>\(live.digest.map { String($0.prefix(19)) })</code></td><td>\(live.taskDefinitionArn.map { String($0.split(separator: "/").last ?? "") })</td><td>\(Page.time(live.at))</td><td>\(live.startedBy)\(live.approvedBy.map { " · approved by \($0)" })</td><td>\(live.run.map { HTML("<a href=\"/runs/\($0)\">run \($0)</a>") } ?? "-") \(live.kind)</td></tr>"
                }
                body.append("<table><tr><th>Service</th><th>Live commit</th><th>Digest</th><th>Revision</th><th>When</th><th>By</th><th>Run</th></tr>\(rows)</table>")
            }
            for drift in view.drift {
                let running = String(drift.running.split(separator: "/").last ?? "")
                if let recorded = drift.recorded {
                    body.append(
                        "<p class=\"error\">Drift: ECS runs \(drift.service) on <code>\(running)</code>, which pipeline did not deploy (it last deployed <code>\(String(recorded.split(separator: "/").last ?? ""))</code>).</p>")
                } else {
                    body.append("<p class=\"notice\">Drift: ECS runs \(drift.service) on <code>\(running)</code>; pipeline has not deployed it here yet.</p>")
                }
            }
            if let problem = view.ecsProblem { body.append("<p class=\"notice\">ECS not checked: \(problem)</p>") }
            if !view.active.isEmpty {
                body.append("<p>Now: \(view.active.map { HTML("<a href=\"/runs/\($0.id)\">run \($0.id)</a> \(Page.status($0.status.rawValue)) ") })</p>")
            }
        }
        return Page.render("Environments", caller: caller, body: HTML(body))
    }

    func runs(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let query = request.uri.queryParameters
        if api, let empty = ["environment", "status", "sha", "trigger", "limit"].first(where: { query.get($0)?.isEmpty == true }) {
            throw HTTPError(.badRequest, message: "query parameter '\(empty)' is empty: leave it out to match any")
        }
        let environment = query.get("environment").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        if let environment, !settings.manifest.environments.contains(where: { $0.name == environment }),
            try store.runs(environment: environment, limit: 1).isEmpty
        {
            throw HTTPError(.badRequest, message: "query parameter 'environment': there is no environment '\(environment)'; the pipeline has \(settings.manifest.environments.map(\.name).joined(separator: ", "))")
        }
        let status = try query.get("status").map { String($0) }.flatMap { text -> RunStatus? in
            if text.isEmpty { return nil }
            guard let status = RunStatus(rawValue: text) else {
                throw HTTPError(.badRequest, message: "status '\(text)' is not one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return status
        }
        let sha = query.get("sha").map { String($0).lowercased() }.flatMap { $0.isEmpty ? nil : $0 }
        if let sha, sha.count > 40 || !sha.allSatisfy(\.isHexDigit) {
            throw HTTPError(.badRequest, message: "query parameter 'sha': '\(sha)' is not (the start of) a commit SHA")
        }
        let trigger = query.get("trigger").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        let limit = try Self.number(query.get("limit"), named: "limit", in: 1...1000) ?? 100
        reconciler.reconcile(store)
        let found = try store.runs(environment: environment, status: status, trigger: trigger, shaPrefix: sha, limit: limit).map(RunView.init)
        if api { return try JSONBody.response(found) }
        let options = ([""] + settings.manifest.environments.map(\.name)).map { name -> HTML in
            "<option value=\"\(name)\"\(name == (environment ?? "") ? HTML(" selected") : "")>\(name.isEmpty ? "any environment" : name)</option>"
        }
        let statuses = ([""] + RunStatus.allCases.map(\.rawValue)).map { name -> HTML in
            "<option value=\"\(name)\"\(name == (status?.rawValue ?? "") ? HTML(" selected") : "")>\(name.isEmpty ? "any status" : name)</option>"
        }
        let filter: HTML = "<form method=\"get\" action=\"/runs\"><select name=\"environment\">\(options)</select> <select name=\"status\">\(statuses)</select> <input name=\"sha\" placeholder=\"SHA\" value=\"\(sha)\"> <input name=\"trigger\" placeholder=\"trigger\" value=\"\(trigger)\"> <button>Filter</button></form>"
        let rows = found.map { run -> HTML in
            "<tr><td><a href=\"/runs/\(run.id)\">\(run.id)</a></td><td>\(run.environment)</td><td>\(Page.status(run.status.rawValue))</td><td><code>\(Page.short(run.sha))</code> \(run.commit?.subject)</td><td>\(run.trigger)</td><td>\(run.user)</td><td>\(Page.time(run.createdAt))</td><td>\(Dates.duration(from: run.startedAt, to: run.finishedAt))</td></tr>"
        }
        return Page.render(
            "Runs", caller: caller,
            body: "\(filter)<table><tr><th>Run</th><th>Environment</th><th>Status</th><th>Commit</th><th>Trigger</th><th>By</th><th>Asked</th><th>Took</th></tr>\(rows)</table>")
    }

    func runPage(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let run = try runRecord(context)
        let view = try RunView.detailed(run, store: store, plan: plans.plan(of: run.id, store: store))
        if api { return try JSONBody.response(view) }
        var body: [HTML] = []
        body.append(
            "<p data-run-src=\"/api/v1/runs/\(run.id)/events\"><span id=\"run-status\" class=\"status s-\(view.status.rawValue)\">\(view.status.rawValue)</span> \(view.environment) · by \(view.user) (\(view.trigger)) · asked \(Page.time(view.createdAt)) · took \(Dates.duration(from: view.startedAt, to: view.finishedAt))</p>")
        if let sha = view.sha {
            body.append("<p>commit <code>\(sha)</code>\(view.commit.map { HTML(" by \($0.author): \($0.subject)") } ?? "")</p>")
        }
        body.append("<p id=\"run-message\" class=\"notice\"\(view.message == nil ? HTML(" hidden") : "")>\(view.message)</p>")
        var actions: [HTML] = []
        if run.shownStatus == .waiting { actions.append("<a href=\"/runs/\(run.id)/approval\">Review the approval</a> ") }
        if caller.may(.deployer) {
            if run.shownStatus.hasOwner { actions.append(Page.form("/runs/\(run.id)/cancel", caller: caller, button: "Cancel", danger: true)) }
            if run.shownStatus == .interrupted || run.shownStatus == .approved {
                actions.append(Page.form("/runs/\(run.id)/resume", caller: caller, button: "Resume"))
            }
            if run.shownStatus.isFinal, run.shownStatus != .succeeded, let sha = run.sha {
                actions.append(
                    Page.form("/runs", caller: caller, button: "Retry", fields: "<input type=\"hidden\" name=\"environment\" value=\"\(run.environment)\"><input type=\"hidden\" name=\"sha\" value=\"\(sha)\">"))
            }
        }
        if !actions.isEmpty { body.append("<p>\(actions)</p>") }
        // The stage graph by service: one table per service (and one for the stages of no service), in plan order.
        let groups = Dictionary(grouping: view.stages) { $0.service ?? "" }
        let order = view.stages.reduce(into: [String]()) { seen, stage in if !seen.contains(stage.service ?? "") { seen.append(stage.service ?? "") } }
        for service in order {
            body.append("<h2>\(service.isEmpty ? "Run" : service)</h2><table><tr><th>Stage</th><th>Kind</th><th>Needs</th><th>Status</th><th>Attempts</th><th>Took</th><th>Message</th><th>Log</th></tr>")
            for stage in groups[service] ?? [] {
                let log: HTML = stage.startedAt == nil ? "-" : "<a href=\"/runs/\(run.id)/stages/\(urlPart(stage.id))/log\">log</a>"
                let links = stage.artifacts.map { file -> HTML in " <a href=\"/runs/\(run.id)/artifacts/\(urlPart(stage.id))/\(file.split(separator: "/").map { urlPart(String($0)) }.joined(separator: "/"))\">\(file)</a>" }
                // An image layout keeps dozens of files: folded under their count.
                let artifacts: HTML = links.count > 3 ? "<details class=\"files\"><summary>\(links.count) files</summary>\(links)</details>" : HTML(links)
                body.append(
                    "<tr data-stage=\"\(stage.id)\"><td>\(stage.id)</td><td>\(stage.kind)</td><td>\(stage.needs.joined(separator: ", "))</td><td><span class=\"status s-\(stage.status.rawValue)\">\(stage.status.rawValue)</span></td><td class=\"attempts\">\(stage.attempts)</td><td class=\"took\">\(Dates.duration(from: stage.startedAt, to: stage.finishedAt))</td><td class=\"message\">\(stage.message)</td><td>\(log)\(artifacts)</td></tr>")
            }
            body.append("</table>")
        }
        // Every stage's masked log, followed live while its pane is open (a browser keeps only 6 connections to a
        // server): the running stages' open at first, and a stage's opens when it starts.
        for stage in view.stages where stage.kind != "approval" {
            body.append(
                "<details data-stage-log=\"\(stage.id)\"\(stage.status == .running ? HTML(" open") : "")><summary>\(stage.id) log</summary><pre class=\"log\" data-log-src=\"/api/v1/runs/\(run.id)/stages/\(urlPart(stage.id))/log\"></pre></details>")
        }
        return Page.render("Run \(run.id)", caller: caller, body: HTML(body))
    }

    // MARK: Live

    /// The run as JSON each time it changes (server-sent events), until it can change no more.
    func runEvents(_ request: Request, context: ServerContext) throws -> Response {
        _ = try viewer(request, context: context, api: true)
        let run = try runRecord(context)
        let store = self.store
        return Self.eventStream { writer in
            var last = Data()
            var quiet = 0
            while true {
                guard let record = try store.run(run.id) else { return }
                let data = try JSONEncoder.compact.encode(try RunView.detailed(record, store: store, plan: plans.plan(of: record.id, store: store)))
                if data != last {
                    last = data
                    try await writer.write(ByteBuffer(string: "data: \(String(decoding: data, as: UTF8.self))\n\n"))
                }
                if record.shownStatus.isFinal {
                    try await writer.write(ByteBuffer(string: "event: end\ndata: \(record.shownStatus.rawValue)\n\n"))
                    return
                }
                quiet += 1
                if quiet % 50 == 0 { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                try await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    /// A stage's masked log as server-sent events, one per line, each with its end's byte offset as id: a client that
    /// reconnects with `Last-Event-ID` gets the lines after it. Ends (event `end`) once the stage has ended and its
    /// log is read to the end.
    func logEvents(_ request: Request, context: ServerContext) throws -> Response {
        _ = try viewer(request, context: context, api: true)
        let run = try runRecord(context)
        let stage = try stageID(context, run: run)
        let file = RunFolder(root: store.runFolder(run.id)).log(stage)
        // The byte offset a reconnecting client last had; one that is not a whole number within the log starts over.
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        let asked = Int(request.headers[HTTPField.Name("Last-Event-ID")!] ?? "") ?? 0
        let start = UInt64((0...size).contains(asked) ? asked : 0)
        let store = self.store
        return Self.eventStream { writer in
            var offset = start
            var pending = Data()
            var idle = 0
            while true {
                var chunk = Data()
                if let handle = FileHandle(forReadingAtPath: file.path) {
                    defer { try? handle.close() }  // closing a read-only handle cannot lose data
                    try handle.seek(toOffset: offset + UInt64(pending.count))
                    chunk = try handle.read(upToCount: 1 << 20) ?? Data()
                }
                if !chunk.isEmpty {
                    pending.append(chunk)
                    var out = ""
                    while let newline = pending.firstIndex(of: 0x0A) {
                        let line = pending[pending.startIndex..<newline]
                        offset += UInt64(line.count + 1)
                        pending.removeSubrange(pending.startIndex...newline)
                        let text = String(decoding: line, as: UTF8.self).replacingOccurrences(of: "\r", with: "")
                        out += "id: \(offset)\ndata: \(text)\n\n"
                    }
                    if !out.isEmpty { try await writer.write(ByteBuffer(string: out)) }
                    idle = 0
                    continue
                }
                idle += 1
                if idle % 5 == 0 {
                    // Ends once the stage has ended, or the run has (a stage it never started stays pending).
                    let status = try store.stageRuns(run.id).first { $0.stageID == stage }?.status ?? .pending
                    let runNow = try store.run(run.id)
                    if status.isFinal || runNow?.shownStatus.isFinal != false {
                        if !pending.isEmpty {
                            offset += UInt64(pending.count)
                            try await writer.write(ByteBuffer(string: "id: \(offset)\ndata: \(String(decoding: pending, as: UTF8.self).replacingOccurrences(of: "\r", with: ""))\n\n"))
                        }
                        try await writer.write(ByteBuffer(string: "event: end\ndata: \(status.rawValue)\n\n"))
                        return
                    }
                }
                if idle % 150 == 0 { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    static func eventStream(_ body: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"  // nginx passes events on as they come
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                do {
                    try await body(&writer)
                } catch is CancellationError {
                } catch let error as ChannelError where error == .ioOnClosedChannel {
                    return  // the follower went away
                }
                try await writer.finish(nil)
            })
    }

    private func stageID(_ context: ServerContext, run: RunRecord) throws -> String {
        let stage = context.parameters.get("stage") ?? ""
        let known = try RunView.detailed(run, store: store, plan: plans.plan(of: run.id, store: store)).stages.map(\.id)
        guard known.contains(stage) else { throw HTTPError(.notFound, message: "run \(run.id) has no stage '\(stage)'") }
        return stage
    }

    func logText(_ request: Request, context: ServerContext) throws -> Response {
        _ = try viewer(request, context: context, api: false)
        let run = try runRecord(context)
        let stage = try stageID(context, run: run)
        let file = RunFolder(root: store.runFolder(run.id)).log(stage)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw HTTPError(.notFound, message: "stage \(stage) of run \(run.id) has no log yet")
        }
        return Self.file(data, type: "text/plain; charset=utf-8")
    }

    /// A file a stage kept, by its path under the stage's artifacts folder; `..` and links out of it are refused.
    func artifact(_ request: Request, context: ServerContext) throws -> Response {
        _ = try viewer(request, context: context, api: false)
        let run = try runRecord(context)
        let stage = try stageID(context, run: run)
        // Each part as the stage named it (links percent-encode them), then checked.
        let parts = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty || $0.contains("\0") || $0.contains("/") }) else {
            throw HTTPError(.badRequest, message: "an artifact path may not contain '..', '.', '/' within a part, or empty parts")
        }
        let root = RunFolder(root: store.runFolder(run.id)).artifacts(stage).standardizedFileURL.resolvingSymlinksInPath()
        let file = parts.reduce(root) { $0.appending(path: $1) }.standardizedFileURL.resolvingSymlinksInPath()
        guard file.path.hasPrefix(root.path + "/") else { throw HTTPError(.badRequest, message: "that path leads out of the stage's artifacts") }
        // A hard link is a second name of a file that may live anywhere (the server's key, the state): only files
        // that are the stage's own alone are served.
        var info = stat()
        guard lstat(file.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw HTTPError(.notFound, message: "stage \(stage) of run \(run.id) kept no '\(parts.joined(separator: "/"))'")
        }
        guard info.st_nlink == 1 else {
            throw HTTPError(.forbidden, message: "'\(parts.joined(separator: "/"))' is a hard link to a file outside the stage's artifacts; it is not served")
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw HTTPError(.notFound, message: "stage \(stage) of run \(run.id) kept no '\(parts.joined(separator: "/"))'")
        }
        var response = Self.file(data, type: "application/octet-stream")
        response.headers[.contentDisposition] = "attachment"
        return response
    }

    static func file(_ text: String, type: String) -> Response { file(Data(text.utf8), type: type) }

    static func file(_ data: Data, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        // Logs, artifacts and exports are the state's, private: never kept by a browser or a proxy.
        headers[.cacheControl] = type.hasPrefix("text/css") || type.hasPrefix("text/javascript") ? "no-cache" : "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

extension JSONEncoder {
    static let compact: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
}

/// Runs' plans, read once each (a run's plan never changes once the run is made); at most 256 kept.
final class PlanCache: Sendable {
    private let plans = Mutex<[Int: Plan]>([:])

    func plan(of run: Int, store: StateStore) -> Plan? {
        if let plan = plans.withLock({ $0[run] }) { return plan }
        // Not readable (yet, or damaged): the view shows the recorded stages, and the next request looks again.
        guard let plan = try? RunFolder(root: store.runFolder(run)).readPlan() else { return nil }
        plans.withLock { table in
            if table.count >= 256 { table.removeAll() }
            table[run] = plan
        }
        return plan
    }
}

/// Marks runs whose runner is provably gone as interrupted, at most once a second (pages are read far more often).
final class Reconciler: Sendable {
    private let last = Mutex<Date>(.distantPast)

    func reconcile(_ store: StateStore) {
        let due = last.withLock { last -> Bool in
            guard Date().timeIntervalSince(last) >= 1 else { return false }
            last = Date()
            return true
        }
        if due { store.reconcileIfPossible() }
    }
}

extension Routes {
    /// A whole-number query parameter within `range`, or nil when absent; otherwise a 400 naming it.
    static func number(_ text: (some StringProtocol)?, named name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw HTTPError(.badRequest, message: "query parameter '\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return value
    }
}
