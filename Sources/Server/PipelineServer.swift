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
        let app = try application(settings, store: store, listening: listening)
        try await app.runService()
    }

    static func application(
        _ settings: ServerSettings, store: StateStore, listening: @escaping @Sendable (String) -> Void
    ) throws -> some ApplicationProtocol {
        let identity = Identity(store: store, settings: settings, key: try Identity.key(home: settings.home))
        let routes = Routes(settings: settings, store: store, identity: identity, starter: RunStarter(settings: settings, store: store),
            liveCheck: LiveCheck(environment: settings.runEnvironment, maxAge: settings.ecsCheckInterval))
        let router = Router(context: ServerContext.self)
        router.add(middleware: Guard())
        router.add(middleware: ClientAddress(trusted: Set(settings.trustedProxies)))
        routes.register(router)
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

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            response = Self.render(error.status, message: error.body ?? error.status.reasonPhrase, headers: error.headers, request: request)
        } catch let error as AccountError {
            response = Self.render(.badRequest, message: error.description, headers: [:], request: request)
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
        if request.uri.path.hasPrefix("/api/") || request.headers[.accept]?.contains("application/json") == true {
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
