import Foundation

/// Credentials, region and endpoints, resolved the way the AWS CLI resolves them.
public struct AWSConfiguration: Sendable {
    /// The credentials.
    public let credentials: AWSCredentials
    /// Where they came from (`environment`, `shared credentials file (profile default)`, ...).
    public let credentialSource: String
    /// The region.
    public let region: String
    /// The profile used.
    public let profile: String
    /// The environment endpoints are resolved from.
    public let environment: [String: String]

    /// The endpoint of `service`.
    public func endpoint(_ service: AWSService) -> Endpoint {
        Endpoint.resolve(service, region: region, environment: environment)
    }

    /// Resolves credentials (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the shared
    /// credentials file, then the config file, for `AWS_PROFILE` or `default`) and the region (`AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, then the profile's `region`).
    public static func resolve(environment: [String: String]) throws(AWSError) -> AWSConfiguration {
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        let shared = INIFile(path: credentialsFile).section(profile)
        let config = INIFile(path: configFile).section(profile == "default" ? "default" : "profile \(profile)")

        let credentials: AWSCredentials
        let source: String
        if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !key.isEmpty {
            credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
            source = "environment"
        } else if let values = [shared, config].compactMap({ $0 }).first(where: { $0["aws_access_key_id"] != nil }),
            let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"]
        {
            credentials = AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"])
            source = shared?["aws_access_key_id"] != nil ? "\(credentialsFile) [\(profile)]" : "\(configFile) [\(profile)]"
        } else {
            throw AWSError(
                service: "sts", operation: "credentials", code: "NoCredentials",
                message: "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with keys in \(credentialsFile) or \(configFile)",
                requestID: nil, status: 0)
        }
        guard let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? config?["region"], !region.isEmpty else {
            throw AWSError(
                service: "sts", operation: "region", code: "NoRegion",
                message: "no AWS region: set AWS_REGION, or region in \(configFile) for profile \(profile)", requestID: nil, status: 0)
        }
        return AWSConfiguration(
            credentials: credentials, credentialSource: source, region: region, profile: profile, environment: environment)
    }
}

/// An INI file as the AWS CLI writes them: `[section]` lines and `key = value` lines.
struct INIFile {
    let sections: [String: [String: String]]

    init(path: String) {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
            } else if let current, let equals = line.firstIndex(of: "=") {
                sections[current, default: [:]][line[..<equals].trimmingCharacters(in: .whitespaces)] =
                    line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            }
        }
        self.sections = sections
    }

    func section(_ name: String) -> [String: String]? { sections[name] }
}
