import Foundation
import HTTP

/// Fetches temporary credentials from each kind of source.
enum CredentialFetch {
    static func fetch(_ source: CredentialSource, region: String, environment: [String: String]) async throws(AWSError) -> AWSCredentials {
        switch source {
        case .fixed(let credentials, _):
            return credentials
        case .process(let command, let profile):
            return try await onOwnThread { () throws(AWSError) in try runProcess(command, profile: profile, environment: environment) }
        case .assumeRole(let role, let inner):
            let provider = CredentialProvider(inner, region: region, environment: environment)
            let client = AWSClient(configuration: AWSConfiguration(credentials: provider, region: region, profile: "", environment: environment))
            return try await client.assumeRole(role)
        case .webIdentity(let arn, let file, let session):
            guard let token = try? String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
                throw failure("AssumeRoleWithWebIdentity", "cannot read a web identity token from \(file) (AWS_WEB_IDENTITY_TOKEN_FILE)")
            }
            let anonymous = CredentialProvider(.fixed(AWSCredentials(accessKeyID: "", secretAccessKey: ""), origin: "none"), region: region, environment: environment)
            let client = AWSClient(configuration: AWSConfiguration(credentials: anonymous, region: region, profile: "", environment: environment))
            return try await client.assumeRoleWithWebIdentity(roleARN: arn, sessionName: session, token: token)
        case .container(let url, let token, let tokenFile):
            var headers: [(name: String, value: String)] = []
            if let tokenFile {
                guard let value = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                    throw failure("container", "cannot read the authorization token file \(tokenFile) (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)")
                }
                headers.append(("Authorization", value.trimmingCharacters(in: .whitespacesAndNewlines)))
            } else if let token {
                headers.append(("Authorization", token))
            }
            let body = try await get(url, headers: headers, timeout: 2, attempts: 3, what: "the container credentials endpoint")
            return try decodeJSON(body, from: "the container credentials endpoint \(URLText.redacted(url))")
        case .instanceMetadata(let endpoint, let timeout, let attempts):
            let base = endpoint.trimmingSuffix("/")
            let token = try await get(
                "\(base)/latest/api/token", method: "PUT", headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                timeout: timeout, attempts: attempts, what: "the instance metadata service")
            let auth = [("X-aws-ec2-metadata-token", String(decoding: token, as: UTF8.self))]
            let roles = try await get(
                "\(base)/latest/meta-data/iam/security-credentials/", headers: auth, timeout: timeout, attempts: attempts,
                what: "the instance metadata service")
            guard let role = String(decoding: roles, as: UTF8.self).split(separator: "\n").first.map(String.init), !role.isEmpty else {
                throw failure("instance metadata", "the instance has no IAM role (instance profile) attached")
            }
            let body = try await get(
                "\(base)/latest/meta-data/iam/security-credentials/\(role)", headers: auth, timeout: timeout,
                attempts: attempts, what: "the instance metadata service")
            return try decodeJSON(body, from: "the instance metadata service (role \(role))")
        }
    }

    /// Runs a profile's `credential_process` through `/bin/sh -c` and reads its JSON.
    static func runProcess(_ command: String, profile: String, environment: [String: String]) throws(AWSError) -> AWSCredentials {
        let process = Process()
        process.executableURL = URL(filePath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw failure("credential_process", "cannot start the credential_process of profile \(profile): \(error)")
        }
        let collected = ErrorCollector(errors.fileHandleForReading)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = collected.text()
        guard process.terminationStatus == 0 else {
            let tail = stderr.split(separator: "\n").suffix(5).joined(separator: " | ")
            throw failure(
                "credential_process",
                "the credential_process of profile \(profile) failed with exit status \(process.terminationStatus)\(tail.isEmpty ? "" : ": \(tail)")")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["Version"] as? Int == 1 else {
            throw failure("credential_process", "the credential_process of profile \(profile) did not print a JSON object with \"Version\": 1")
        }
        return try credentials(object, token: "SessionToken", from: "the credential_process of profile \(profile)")
    }

    /// Reads a JSON credentials answer (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`).
    static func decodeJSON(_ body: [UInt8], from origin: String) throws(AWSError) -> AWSCredentials {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw failure("fetch", "\(origin) did not answer with JSON")
        }
        if let code = object["Code"] as? String, code != "Success" {
            throw failure("fetch", "\(origin) answered \(code): \(object["Message"] as? String ?? "no message")")
        }
        return try credentials(object, token: "Token", from: origin)
    }

    static func credentials(_ object: [String: Any], token: String, from origin: String) throws(AWSError) -> AWSCredentials {
        guard let key = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String, !key.isEmpty, !secret.isEmpty else {
            throw failure("fetch", "\(origin) gave no AccessKeyId and SecretAccessKey")
        }
        var expiration: Date?
        if let text = object["Expiration"] as? String {
            guard let date = parseTimestamp(text) else { throw failure("fetch", "\(origin) gave an unreadable Expiration: \(text)") }
            expiration = date
        }
        let session = (object[token] as? String ?? object["SessionToken"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: session, expiration: expiration)
    }

    /// ISO 8601 with or without fractional seconds.
    static func parseTimestamp(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    private static func get(
        _ url: String, method: String = "GET", headers: [(name: String, value: String)], timeout: Double, attempts: Int, what: String
    ) async throws(AWSError) -> [UInt8] {
        let http = HTTPClient()
        var last = ""
        for _ in 0..<max(1, attempts) {
            do {
                let response = try await http.send(
                    HTTPRequest(method: method, url: url, headers: headers, timeout: timeout, connectTimeout: timeout))
                if response.status == 200 { return response.body }
                last = "HTTP \(response.status) from \(URLText.redacted(url))"
                if (400..<500).contains(response.status) { break }
            } catch {
                last = "no answer from \(URLText.redacted(url)) within \(timeout.formatted())s (\(error.message))"
            }
        }
        throw failure("fetch", "\(what): \(last)")
    }

    static func failure(_ operation: String, _ message: String) -> AWSError {
        AWSError(service: "credentials", operation: operation, code: "CredentialsUnavailable", message: message, requestID: nil, status: 0)
    }
}

/// Reads a pipe to its end on another thread, so a child that fills its stderr cannot block on it. Unchecked: `data`
/// is written by that thread before it signals and read only after the wait, which orders the two.
private final class ErrorCollector: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}

extension AWSClient {
    /// STS AssumeRole: temporary credentials of `role`.
    public func assumeRole(_ role: RoleRequest) async throws(AWSError) -> AWSCredentials {
        var parameters = [("RoleArn", role.arn), ("RoleSessionName", role.sessionName)]
        if let external = role.externalID { parameters.append(("ExternalId", external)) }
        if let duration = role.durationSeconds { parameters.append(("DurationSeconds", String(duration))) }
        let xml = try await query(.sts, action: "AssumeRole", version: "2011-06-15", parameters: parameters)
        return try Self.stsCredentials(xml, operation: "AssumeRole")
    }

    /// STS AssumeRoleWithWebIdentity: temporary credentials of `roleARN` for an OIDC token; the call is not signed.
    public func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, token: String) async throws(AWSError) -> AWSCredentials {
        let xml = try await query(
            .sts, action: "AssumeRoleWithWebIdentity", version: "2011-06-15",
            parameters: [("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", token)], signed: false)
        return try Self.stsCredentials(xml, operation: "AssumeRoleWithWebIdentity")
    }

    static func stsCredentials(_ xml: String, operation: String) throws(AWSError) -> AWSCredentials {
        guard let key = XMLText.first("AccessKeyId", in: xml), let secret = XMLText.first("SecretAccessKey", in: xml) else {
            throw AWSError(service: "sts", operation: operation, code: "Decoding", message: "no Credentials in the answer", requestID: XMLText.first("RequestId", in: xml), status: 200)
        }
        return AWSCredentials(
            accessKeyID: key, secretAccessKey: secret, sessionToken: XMLText.first("SessionToken", in: xml),
            expiration: XMLText.first("Expiration", in: xml).flatMap(CredentialFetch.parseTimestamp))
    }
}
