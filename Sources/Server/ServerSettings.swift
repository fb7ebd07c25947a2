import Foundation
import PipelineDSL

/// How `pipeline serve` runs.
public struct ServerSettings: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port (0: any free one; the one taken is printed).
    public var port: Int
    /// The URL people reach the server at (behind a proxy, its https URL); links and statuses use it, and with
    /// https cookies are marked Secure.
    public var publicURL: URL?
    /// The state folder (`PIPELINE_HOME`).
    public var home: URL
    /// The `pipeline` executable runs are started with (the same child-process runs as the CLI's).
    public var executable: String
    /// The environment runs are started in (the server's own, with `PIPELINE_HOME`).
    public var runEnvironment: [String: String]
    /// The pipeline: environments, services, the stages of each environment.
    public var manifest: Manifest
    /// The header an SSO proxy (oauth2-proxy style) names the signed-in user in; nil: not trusted at all.
    public var identityHeader: String?
    /// The addresses that header is accepted from (the proxy's).
    public var trustedProxies: [String]
    /// How often the environments page asks ECS what runs, at most (seconds).
    public var ecsCheckInterval: TimeInterval = 15
    /// How long a sign-in lasts.
    public var sessionLifetime: TimeInterval = 12 * 3600

    public init(
        host: String, port: Int, publicURL: URL?, home: URL, executable: String, runEnvironment: [String: String], manifest: Manifest,
        identityHeader: String?, trustedProxies: [String]
    ) {
        self.host = host
        self.port = port
        self.publicURL = publicURL
        self.home = home
        self.executable = executable
        self.runEnvironment = runEnvironment
        self.manifest = manifest
        self.identityHeader = identityHeader
        self.trustedProxies = trustedProxies
    }

    /// Whether cookies must be Secure (the public URL is https).
    var secureCookies: Bool { publicURL?.scheme == "https" }
}
