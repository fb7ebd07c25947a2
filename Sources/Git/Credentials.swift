import CGit2
import Foundation

/// How to reach a remote: a token for HTTPS, a key file or the agent for SSH, how long to wait on a silent one.
public struct GitCredentials: Sendable {
    /// The token sent as the password over HTTPS (`PIPELINE_GIT_TOKEN`).
    public var token: String?
    /// The user name sent with the token (`PIPELINE_GIT_USERNAME`, default `x-access-token`).
    public var username: String
    /// A private key file for SSH (`PIPELINE_GIT_SSH_KEY`); without one, the SSH agent is asked.
    public var sshKey: String?
    /// The key's passphrase (`PIPELINE_GIT_SSH_PASSPHRASE`).
    public var sshPassphrase: String?
    /// The SSH agent's socket (`SSH_AUTH_SOCK`), asked when there is no key file.
    public var agentSocket: String?
    /// The known-hosts file SSH host keys are checked against (`PIPELINE_GIT_KNOWN_HOSTS`, default
    /// `~/.ssh/known_hosts`).
    public var knownHosts: String
    /// Seconds a git:// remote may send nothing (or take no connection) before the fetch gives up
    /// (`PIPELINE_GIT_TIMEOUT`, default 120).
    public var timeout: Double = 120

    /// Credentials from the environment variables named above.
    public static func fromEnvironment(_ environment: [String: String]) -> GitCredentials {
        let home = environment["HOME"] ?? NSHomeDirectory()
        return GitCredentials(
            token: environment["PIPELINE_GIT_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            username: environment["PIPELINE_GIT_USERNAME"] ?? "x-access-token",
            sshKey: environment["PIPELINE_GIT_SSH_KEY"].flatMap { $0.isEmpty ? nil : $0 },
            sshPassphrase: environment["PIPELINE_GIT_SSH_PASSPHRASE"],
            agentSocket: environment["SSH_AUTH_SOCK"].flatMap { $0.isEmpty ? nil : $0 },
            knownHosts: environment["PIPELINE_GIT_KNOWN_HOSTS"] ?? "\(home)/.ssh/known_hosts",
            timeout: environment["PIPELINE_GIT_TIMEOUT"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 120)
    }

    /// What is wrong with the environment's git settings, if anything: a `PIPELINE_GIT_TIMEOUT` that is not a
    /// positive number of seconds.
    public static func problem(in environment: [String: String]) -> String? {
        guard let text = environment["PIPELINE_GIT_TIMEOUT"], !text.isEmpty else { return nil }
        guard let seconds = Double(text), seconds > 0, seconds.isFinite else {
            return "PIPELINE_GIT_TIMEOUT must be a number of seconds greater than 0 (e.g. 120), not '\(text)'"
        }
        return nil
    }
}

/// What the libgit2 callbacks of one fetch share; passed to them unretained, kept alive by the fetch.
final class RemoteContext {
    let credentials: GitCredentials
    let port: Int?
    var credentialAttempts = 0
    /// What was last offered to the remote, for the error message when it is refused.
    var offered = "the credentials"
    /// Why we refused something, for the error message.
    var refusal: String?

    init(credentials: GitCredentials, url: String) {
        self.credentials = credentials
        port = URLComponents(string: url)?.port
    }

    /// Fills in `callbacks` so that libgit2 asks this context for credentials and host-key decisions.
    func install(in callbacks: inout git_remote_callbacks) {
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, _, usernameFromURL, allowed, payload in
            let context = Unmanaged<RemoteContext>.fromOpaque(payload!).takeUnretainedValue()
            return context.credential(out!, usernameFromURL: usernameFromURL.map { String(cString: $0) }, allowed: allowed)
        }
        callbacks.certificate_check = { cert, valid, host, payload in
            let context = Unmanaged<RemoteContext>.fromOpaque(payload!).takeUnretainedValue()
            return context.checkCertificate(cert!, valid: valid != 0, host: String(cString: host!))
        }
    }

    private func credential(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>, usernameFromURL: String?, allowed: UInt32) -> Int32 {
        credentialAttempts += 1
        if credentialAttempts > 1 {
            refusal = "the remote refused \(offered)"
            return GIT_EAUTH.rawValue
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0 {
            guard let token = credentials.token else {
                refusal = "the remote asks for credentials: set PIPELINE_GIT_TOKEN (and PIPELINE_GIT_USERNAME if it is not x-access-token)"
                return GIT_EAUTH.rawValue
            }
            offered = "the token for \(usernameFromURL ?? credentials.username)"
            return git_credential_userpass_plaintext_new(out, usernameFromURL ?? credentials.username, token)
        }
        let user = usernameFromURL ?? "git"
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 {
            if let key = credentials.sshKey {
                offered = "the SSH key \(key) for \(user)"
                return git_credential_ssh_key_new(out, user, nil, key, credentials.sshPassphrase)
            }
            guard credentials.agentSocket != nil else {
                refusal = "the remote asks for an SSH key: set PIPELINE_GIT_SSH_KEY to a key file, or start an SSH agent that holds the key (SSH_AUTH_SOCK)"
                return GIT_EAUTH.rawValue
            }
            offered = "every key of the SSH agent (SSH_AUTH_SOCK) for \(user)"
            return git_credential_ssh_key_from_agent(out, user)
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return git_credential_username_new(out, user)
        }
        refusal = "the remote asks for a kind of credentials pipeline does not offer (\(allowed))"
        return GIT_EAUTH.rawValue
    }

    private func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>, valid: Bool, host: String) -> Int32 {
        if cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 {
            let hostKey = UnsafeMutableRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
            guard hostKey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hostKey.hostkey else {
                refusal = "the SSH server's host key cannot be read to check it"
                return GIT_ECERTIFICATE.rawValue
            }
            let key = Data(bytes: raw, count: hostKey.hostkey_len).base64EncodedString()
            let known = KnownHosts(path: credentials.knownHosts)
            if known.contains(host: host, port: port, key: key) { return 0 }
            refusal = "the SSH host key of \(host) is not in \(credentials.knownHosts); add it (ssh-keyscan) after checking it"
            return GIT_ECERTIFICATE.rawValue
        }
        if valid { return 0 }
        refusal = "the TLS certificate of \(host) is not trusted; set SSL_CERT_FILE to the CA that signed it"
        return GIT_ECERTIFICATE.rawValue
    }
}
