import ArgumentParser
import Foundation
import Runner
import NIOCore
import Server

extension PipelineCommand {
    /// `pipeline serve [--listen HOST:PORT] [--url URL]`: a thin adapter over the Server module.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve the team's pages and API: runs, live logs, approvals, deployments and the audit.",
            discussion: """
                The server reads the same state as the CLI and starts runs as the CLI's own processes (a restart of \
                the server never stops a run). People sign in with accounts from `pipeline users add`; scripts use \
                tokens from `pipeline tokens create`. Behind an SSO proxy, --identity-header names the header the \
                proxy sets, accepted only from --trusted-proxy addresses (whose X-Forwarded-For also names the client \
                for the audit and sign-in limits). Exit codes: 2 bad options; 74 the state \
                cannot be opened.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Where to listen (port 0: any free port; the URL is printed).", valueName: "host:port"))
        var listen = "127.0.0.1:8080"

        @Option(help: ArgumentHelp("The URL people reach the server at (https makes cookies Secure).", valueName: "url"))
        var url: String?

        @Option(help: ArgumentHelp("The header an SSO proxy names the signed-in user in.", valueName: "name"))
        var identityHeader: String?

        @Option(help: ArgumentHelp("A reverse proxy's address: its X-Forwarded-For names the client, and the identity header is accepted from it (repeatable).", valueName: "ip"))
        var trustedProxy: [String] = []

        @Option(help: ArgumentHelp("Ask ECS what each service runs (for drift on the environments page) at most this often.", valueName: "seconds"))
        var ecsCheckInterval: Double = 15

        func validate() throws {
            if !(ecsCheckInterval >= 0) { throw ValidationError("--ecs-check-interval must be 0 or more seconds, got \(ecsCheckInterval)") }
            guard Self.split(listen) != nil else { throw ValidationError("--listen '\(listen)' is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080)") }
            if let url, URL(string: url)?.scheme.map({ ["http", "https"].contains($0) }) != true || URL(string: url)?.host == nil {
                throw ValidationError("--url '\(url)' is not an http(s) URL")
            }
            if identityHeader != nil, trustedProxy.isEmpty {
                throw ValidationError("--identity-header needs --trusted-proxy: the header is accepted only from the proxy's addresses")
            }
            if let bad = trustedProxy.first(where: { IPAddressText.isAddress($0) == false }) {
                throw ValidationError("--trusted-proxy '\(bad)' is not an IP address (e.g. 127.0.0.1 or ::1)")
            }
            if let identityHeader, identityHeader.isEmpty || !identityHeader.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) {
                throw ValidationError("--identity-header '\(identityHeader)' is not a header name")
            }
        }

        static func split(_ listen: String) -> (String, Int)? {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else { return nil }
            var host = String(listen[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return host.isEmpty ? nil : (host, port)
        }

        func run() async throws {
            let (host, port) = Self.split(listen)!
            do {
                let workspace = try global.workspace()
                let manifest = try PlanLoading(global).manifest()
                let store = try StateAccess.open(workspace)
                var environment = ProcessInfo.processInfo.environment
                environment["PIPELINE_HOME"] = workspace.home.path
                environment[Workspace.pipelinesVariable] = workspace.pipelinesDirectory.path
                var settings = ServerSettings(
                    host: host, port: port, publicURL: url.flatMap(URL.init(string:)), home: workspace.home,
                    executable: DSLLibrary.currentExecutable?.path ?? CommandLine.arguments[0], runEnvironment: environment, manifest: manifest,
                    identityHeader: identityHeader, trustedProxies: trustedProxy)
                settings.ecsCheckInterval = ecsCheckInterval
                try await PipelineServer.run(settings, store: store) { address in
                    let users = (try? store.users().count) ?? 0  // only for the hint below
                    print("pipeline serve: listening on \(address)\(url.map { " (public URL \($0))" } ?? "")")
                    if users == 0 { print("no users yet: add one with `pipeline users add NAME --role admin`") }
                    fflush(nil)
                }
            } catch let error as IOError where [EADDRINUSE, EACCES, EADDRNOTAVAIL].contains(error.errnoCode) {
                FileHandle.standardError.write(Data("error: cannot listen on \(listen): \(String(cString: strerror(error.errnoCode))); choose another --listen address or port\n".utf8))
                throw Exit.badInput
            } catch {
                throw error.reported()
            }
        }
    }
}

enum IPAddressText {
    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
