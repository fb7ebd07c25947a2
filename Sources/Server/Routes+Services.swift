import Foundation
import Hummingbird
import PipelineDSL
import Runner

/// A service's deployment records, and rolling it back: a confirmation page that says exactly what will change (the
/// CLI's own `rollback --dry-run`, with its checks against ECS and the registry), then the rollback as the CLI's
/// own process.
extension Routes {
    private func service(_ context: ServerContext) throws -> ServiceSpec {
        let name = context.parameters.get("name") ?? ""
        guard let service = settings.manifest.services.first(where: { $0.name == name }) else {
            throw HTTPError(.notFound, message: "the pipeline has no service '\(name)'; it has \(settings.manifest.services.map(\.name).joined(separator: ", "))")
        }
        return service
    }

    func servicePage(_ request: Request, context: ServerContext, api: Bool) throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let service = try service(context)
        let records = try store.deployments(service: service.name, environment: nil, limit: 200)
        let views = try records.map { record -> LiveView in
            let run = try record.run.flatMap { try store.run($0) }
            return LiveView(
                environment: record.environment, service: record.service, kind: record.shownKind, sha: record.sha,
                subject: run?.sha == record.sha ? run?.commit?.subject : nil, image: record.image, digest: record.digest,
                taskDefinitionArn: record.taskDefinitionArn, at: record.createdAt, run: record.run, trigger: record.trigger,
                approvedBy: record.approvedBy, startedBy: run?.user)
        }
        if api { return try JSONBody.response(views) }
        var body: [HTML] = []
        for environment in settings.manifest.environments.map(\.name) {
            let here = views.filter { $0.environment == environment }
            guard !here.isEmpty else { continue }
            let live = here.first
            let rows = here.map { view -> HTML in
                let action: HTML = view.sha == live?.sha || view.taskDefinitionArn == nil
                    ? (view.sha == live?.sha ? "live" : "-")
                    : "<a href=\"/services/\(urlPart(service.name))/rollback?env=\(urlPart(environment))&amp;to=\(view.sha)\">roll back to this</a>"
                return "<tr><td>\(Page.time(view.at))</td><td>\(view.kind)</td><td><code>\(Page.short(view.sha))</code> \(view.subject)</td><td><code>\(view.digest.map { String($0.prefix(19)) })</code></td><td>\(view.taskDefinitionArn.map { String($0.split(separator: "/").last ?? "") })</td><td>\(view.run.map { HTML("<a href=\"/runs/\($0)\">\($0)</a>") } ?? "-")</td><td>\(view.startedBy)\(view.approvedBy.map { " · approved by \($0)" })</td><td>\(action)</td></tr>"
            }
            body.append("<h2>\(environment)</h2><table><tr><th>When</th><th>Kind</th><th>Commit</th><th>Digest</th><th>Revision</th><th>Run</th><th>By</th><th></th></tr>\(rows)</table>")
        }
        if body.isEmpty { body.append("<p>No deployments of \(service.name) are recorded.</p>") }
        return Page.render("Service \(service.name)", caller: caller, body: HTML(body))
    }

    /// Who may roll back in `environment`: a deployer where the environment has no approval gate; where it has one,
    /// one of its approvers or an admin.
    private func mayRollBack(_ caller: Caller, environment: String) -> String? {
        let gates = (settings.manifest.stages[environment] ?? []).compactMap { stage -> ApprovalSpec? in
            if case .approval(let spec) = stage.spec { return spec }
            return nil
        }
        if caller.may(.admin) { return nil }
        if gates.isEmpty { return caller.may(.deployer) ? nil : "\(caller.name) is a \(caller.user.role.rawValue); rolling back needs a deployer" }
        if gates.contains(where: { $0.approvers.contains(caller.name) }) { return nil }
        return "\(environment) is gated: a rollback there needs one of its approvers (\(Set(gates.flatMap(\.approvers)).sorted().joined(separator: ", "))) or an admin"
    }

    private func rollbackTarget(_ request: Request, fields: Fields?) throws -> (environment: String, to: String) {
        let query = request.uri.queryParameters
        let environment = fields?["env"] ?? query.get("env").map { String($0) } ?? ""
        let to = (fields?["to"] ?? query.get("to").map { String($0) } ?? "").lowercased()
        guard settings.manifest.environments.contains(where: { $0.name == environment }) else {
            throw HTTPError(.badRequest, message: "field 'env': '\(environment)' is not one of \(settings.manifest.environments.map(\.name).joined(separator: ", "))")
        }
        guard to == "previous" || ((7...40).contains(to.count) && to.allSatisfy(\.isHexDigit)) else {
            throw HTTPError(.badRequest, message: "field 'to': '\(to)' is not a commit SHA (7 to 40 hexadecimal digits) or 'previous'")
        }
        return (environment, to)
    }

    /// What a rollback would change, as `pipeline rollback --dry-run` says it (its checks against ECS and the registry
    /// made), for the confirmation page and its JSON twin.
    struct RollbackPreview: Encodable {
        let service: String
        let environment: String
        let to: String
        /// Whether the rollback can go ahead (false: refused, or nothing to do).
        let possible: Bool
        /// What will change, or why it cannot, in the CLI's words.
        let text: String
    }

    func rollbackConfirmation(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let caller = try viewer(request, context: context, api: api)
        let service = try service(context)
        let (environment, to) = try rollbackTarget(request, fields: nil)
        if let refusal = mayRollBack(caller, environment: environment) { throw HTTPError(.forbidden, message: refusal) }
        let preview = try await starter.command(["rollback", service.name, "--env", environment, "--to", to, "--dry-run"], caller: caller)
        let text = (preview.output).trimmingCharacters(in: .whitespacesAndNewlines)
        if api {
            let lines = text.split(separator: "\n").filter { !$0.hasPrefix("dry run") }.joined(separator: "\n")
            return try JSONBody.response(
                RollbackPreview(
                    service: service.name, environment: environment, to: to, possible: preview.status == 0 && !text.contains("nothing to do"),
                    text: preview.status == 0 ? lines : text))
        }
        guard preview.status == 0 else {
            return Page.render("Roll back \(service.name)", caller: caller, body: "<p class=\"error\">Cannot roll back:</p><pre>\(text)</pre>", status: .conflict)
        }
        if text.contains("nothing to do") {
            return Page.render("Roll back \(service.name)", caller: caller, body: "<pre>\(text)</pre>")
        }
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("dry run") }.joined(separator: "\n")
        let fields: HTML = "<input type=\"hidden\" name=\"env\" value=\"\(environment)\"><input type=\"hidden\" name=\"to\" value=\"\(to)\">"
        return Page.render(
            "Roll back \(service.name) in \(environment)", caller: caller,
            body: "<p>This is what will change:</p><pre>\(lines)</pre>\(Page.form("/services/\(urlPart(service.name))/rollback", caller: caller, button: "Roll back", fields: fields, danger: true)) <a href=\"/services/\(urlPart(service.name))\">Cancel</a>")
    }

    func rollback(_ request: Request, context: ServerContext, api: Bool) async throws -> Response {
        let fields = try await Fields.read(request, context: context)
        let caller = try identity.requireForChange(request, context: context, fields: fields, role: .viewer)
        let service = try service(context)
        let (environment, to) = try rollbackTarget(request, fields: fields)
        if let refusal = mayRollBack(caller, environment: environment) { throw HTTPError(.forbidden, message: refusal) }
        let id = try await starter.rollback(service: service.name, environment: environment, to: to, caller: caller)
        try store.audit(
            actor: caller.name, identity: caller.kind, action: "rolled-back", target: "run \(id)", detail: "\(service.name) in \(environment) to \(to)",
            address: context.clientAddress)
        if api { return try JSONBody.response(RunView.detailed(try store.run(id)!, store: store, plan: plans.plan(of: id, store: store)), status: .created) }
        return Response.redirect(to: "/runs/\(id)", type: .normal)
    }
}
