import Foundation

/// A Debian docker-registry of the test's own on a free loopback port: open, with htpasswd basic auth, or behind
/// the bearer-token flow of runner/dev/registry-token-server.
public final class LocalRegistry: @unchecked Sendable {
    /// How clients must authenticate.
    public enum Auth {
        /// Not at all.
        case open
        /// Basic auth with this user and password (bcrypt in an htpasswd file).
        case basic(user: String, password: String)
        /// Bearer tokens from a token service that takes this user and password.
        case token(user: String, password: String)
    }

    /// `http://127.0.0.1:PORT`.
    public let url: String
    /// `127.0.0.1:PORT`.
    public let host: String
    /// The folder of its config and data.
    public let folder: TemporaryDirectory
    private let server: ServerProcess
    private let tokenServer: PortServer?

    /// Starts a registry and waits until it answers.
    public init(_ auth: Auth = .open) throws {
        folder = TemporaryDirectory("pipeline-registry")
        let port = freePort()
        host = "127.0.0.1:\(port)"
        url = "http://\(host)"
        var authentication = ""
        var tokens: PortServer?
        switch auth {
        case .open: break
        case .basic(let user, let password):
            let hashed = try runProcess(
                URL(filePath: "/usr/bin/python3"), ["-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))", password])
            folder.write("htpasswd", "\(user):\(hashed.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\n")
            authentication = "auth: {htpasswd: {realm: test, path: \(folder.url.path)/htpasswd}}\n"
        case .token(let user, let password):
            let server = ServerProcess.script("registry-token-server", [folder.url.path, user, password])
            let tokenPort = try server.port()
            tokens = server
            authentication = """
                auth:
                  token: {realm: "http://127.0.0.1:\(tokenPort)/token", service: test-registry, issuer: pipeline-test-issuer, rootcertbundle: \(folder.url.path)/token.pem}

                """
        }
        tokenServer = tokens
        folder.write(
            "config.yml",
            """
            version: 0.1
            log: {level: error, accesslog: {disabled: true}}
            storage:
              filesystem: {rootdirectory: \(folder.url.path)/data}
              delete: {enabled: true}
              maintenance: {uploadpurging: {enabled: false}}
            http: {addr: \(host), secret: test-only}
            \(authentication)
            """)
        server = try ServerProcess("/usr/bin/docker-registry", ["serve", folder.url.appending(path: "config.yml").path])
        for _ in 0..<200 {
            if canConnect(port) { return }
            usleep(25_000)
        }
        throw POSIXError(.ECONNREFUSED)
    }

    /// `skopeo inspect --raw` of `reference` (`repo:tag`): the manifest bytes the registry serves.
    public func manifest(_ reference: String, credentials: String? = nil) throws -> Data {
        var arguments = ["inspect", "--raw", "--tls-verify=false"]
        if let credentials { arguments += ["--creds", credentials] }
        let result = try runProcess(URL(filePath: "/usr/bin/skopeo"), arguments + ["docker://\(host)/\(reference)"])
        guard result.status == 0 else { throw POSIXError(.ENOENT) }
        return Data(result.stdout.utf8)
    }
}

private func canConnect(_ port: Int) -> Bool {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
