import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Runner

/// `pipeline serve`: one long-running process over the same state and runner as the CLI. It never runs stages
/// itself: it starts and continues runs as the CLI's own child processes (`pipeline run`, `pipeline resume`), which
/// take ownership through the one function every command uses, and it reads the same state.
public enum PipelineServer {
    /// Serves until cancelled; `listening` is told the URL once the port is bound.
    public static func run(_ settings: ServerSettings, store: StateStore, listening: @escaping @Sendable (String) -> Void) async throws {
        let secrets = ForgeSecrets(settings: settings)
        let app = try application(settings, store: store, secrets: secrets, listening: listening)
        // A forge secret that cannot be read is said at start, not first at a delivery.
        Task {
            for forge in settings.manifest.forges {
                for (what, reference) in [("webhook secret", forge.webhookSecret), ("token", forge.token)] {
                    guard let reference else { continue }
                    do {
                        _ = try await secrets.value(reference)
                    } catch {
                        Logger(label: "pipeline.serve").warning("the \(forge.kind.rawValue) \(what) cannot be read: \(error)")
                    }
                }
            }
        }
        guard let reporter = GitHubReporter(settings: settings, store: store, secrets: secrets) else {
            return try await app.runService()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            group.addTask { await reporter.run() }
            try await group.next()  // the server ended: so does the reporter
            group.cancelAll()
        }
    }

    static func application(
        _ settings: ServerSettings, store: StateStore, secrets: ForgeSecrets, listening: @escaping @Sendable (String) -> Void
    ) throws -> some ApplicationProtocol {
        let identity = Identity(store: store, settings: settings, key: try Identity.key(home: settings.home))
        RunStarter.removeOldLogs(home: settings.home)
        let starter = RunStarter(settings: settings, store: store)
        let routes = Routes(settings: settings, store: store, identity: identity, starter: starter,
            liveCheck: LiveCheck(environment: settings.runEnvironment, maxAge: settings.ecsCheckInterval))
        let router = Router(context: ServerContext.self)
        router.add(middleware: Guard(methods: AllowedMethods(document: OpenAPI.document(environments: [], services: []))))
        router.add(middleware: ClientAddress(trusted: Set(settings.trustedProxies)))
        routes.register(router)
        Webhooks(settings: settings, store: store, starter: starter, secrets: secrets).register(router)
        let metrics = StateMetrics(store: store, manifest: settings.manifest)
        // Prometheus scrapes with an API token (`authorization: {credentials: TOKEN}` in its scrape config).
        router.get("/metrics") { request, context in
            guard try identity.caller(request, context: context) != nil else {
                throw HTTPError(.unauthorized, message: "sign in first: scrape with `Authorization: Bearer TOKEN` (`pipeline tokens create`)")
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try metrics.render())))
        }
        var logger = Logger(label: "pipeline.serve")
        logger.logLevel = .warning
        return Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "pipeline"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                listening("http://\(settings.host.contains(":") ? "[\(settings.host)]" : settings.host):\(port)")
            },
            logger: logger)
    }
}

/// Security headers on every answer, and errors rendered as the asker expects: JSON under /api/, a page elsewhere
/// (its message escaped like everything a page shows).
struct Guard: RouterMiddleware {
    typealias Context = ServerContext
    let methods: AllowedMethods

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            // A method a path does not answer is 405 naming the ones it does (the API's from its OpenAPI document).
            if let allowed = methods.allowed(request.uri.path, method: request.method) {
                throw HTTPError(.methodNotAllowed, headers: [.allow: allowed], message: "\(request.method) is not allowed on \(request.uri.path); use \(allowed)")
            }
            if request.method == .head {
                // HEAD is GET without the body (every GET route is registered for HEAD too).
                let answer = try await next(request, context)
                response = Response(status: answer.status, headers: answer.headers, body: ResponseBody())
            } else {
                response = try await next(request, context)
            }
        } catch let error as HTTPError {
            response = Self.render(error.status, message: error.body ?? error.status.reasonPhrase, headers: error.headers, request: request)
        } catch let error as AccountError {
            response = Self.render(.badRequest, message: error.description, headers: [:], request: request)
        } catch let error as DatabaseError where DatabaseError.cannotWrite.contains(error.code & 0xff) {
            // Locked by a long write elsewhere, full or read-only: the state is out of reach for now, not broken.
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            response = Self.render(
                .serviceUnavailable, message: "the state database cannot be used right now (busy, full or read-only); try again shortly",
                headers: [.retryAfter: "5"], request: request)
        } catch {
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            response = Self.render(.internalServerError, message: "the server failed: \(error)", headers: [:], request: request)
        }
        response.headers[.contentSecurityPolicy] = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        return response
    }

    static func render(_ status: HTTPResponse.Status, message: String, headers: HTTPFields, request: Request) -> Response {
        if request.uri.path.hasPrefix("/api/") || request.uri.path.hasPrefix("/hooks/") || request.headers[.accept]?.contains("application/json") == true {
            struct Problem: Encodable { let error: String; let status: Int }
            var response = (try? JSONBody.response(Problem(error: message, status: status.code), status: status))  // encoding two strings cannot fail
                ?? Response(status: status)
            for field in headers where field.name != .contentType && field.name != .contentLength { response.headers.append(field) }
            return response
        }
        let signIn: HTML = status == .unauthorized ? " <a href=\"/signin?next=\(urlPart(request.uri.path))\">Sign in</a>" : ""
        var response = Page.render("\(status.code) \(status.reasonPhrase)", caller: nil, body: "<p class=\"error\">\(message)\(signIn)</p>", status: status)
        for field in headers where field.name != .contentType && field.name != .contentLength { response.headers.append(field) }
        return response
    }
}

/// The methods each API path answers, read from the OpenAPI document; other paths answer GET, HEAD and POST.
struct AllowedMethods: Sendable {
    private let templates: [(segments: [String], methods: [String])]

    init(document: String) {
        let json = (try? JSONSerialization.jsonObject(with: Data(document.utf8))) as? [String: Any]  // the document is ours and parses (tested)
        let paths = json?["paths"] as? [String: [String: Any]] ?? [:]
        templates = paths.map { path, operations in
            let methods = operations.keys.map { $0.uppercased() }.sorted()
            return (("/api/v1" + path).split(separator: "/").map(String.init), methods.contains("GET") ? methods + ["HEAD"] : methods)
        }
    }

    /// The `Allow` value when `method` is not one `path` answers; nil when it is (or the path is unknown: 404 then).
    func allowed(_ path: String, method: HTTPRequest.Method) -> String? {
        let segments = path.split(separator: "/").map(String.init)
        guard path.hasPrefix("/api/v1/") else {
            return [.get, .head, .post].contains(method) ? nil : "GET, HEAD, POST"
        }
        guard let template = templates.first(where: { template in
            template.segments.count == segments.count
                && zip(template.segments, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }) else { return nil }
        return template.methods.contains(method.rawValue) ? nil : template.methods.joined(separator: ", ")
    }
}
