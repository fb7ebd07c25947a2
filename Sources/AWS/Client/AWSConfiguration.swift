import Foundation

/// Credentials, region and endpoints, resolved the way the AWS CLI resolves them.
public struct AWSConfiguration: Sendable {
    /// Hands out the credentials (temporary ones cached and refreshed).
    public let credentials: CredentialProvider
    /// Where they come from (`environment`, `~/.aws/credentials [team]`, `role ... assumed with ...`).
    public var credentialSource: String { credentials.description }
    /// The region.
    public let region: String
    /// The profile used.
    public let profile: String
    /// The environment endpoints are resolved from.
    public let environment: [String: String]

    init(credentials: CredentialProvider, region: String, profile: String, environment: [String: String]) {
        self.credentials = credentials
        self.region = region
        self.profile = profile
        self.environment = environment
    }

    /// The endpoint of `service`.
    public func endpoint(_ service: AWSService) -> Endpoint {
        Endpoint.resolve(service, region: region, environment: environment)
    }

    /// The same settings in another region.
    public func inRegion(_ region: String) -> AWSConfiguration {
        AWSConfiguration(
            credentials: CredentialProvider(credentials.source, region: region, environment: environment), region: region,
            profile: profile, environment: environment)
    }

    /// The same settings acting as `role`, assumed through STS with the credentials resolved so far.
    public func assuming(_ role: RoleRequest) -> AWSConfiguration {
        AWSConfiguration(
            credentials: CredentialProvider(.assumeRole(role, source: credentials.source), region: region, environment: environment),
            region: region, profile: profile, environment: environment)
    }

    /// Resolves where credentials come from, in the AWS CLI's order: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
    /// (`AWS_SESSION_TOKEN`); the profile's (`AWS_PROFILE`, or `default`) `role_arn` with `source_profile`,
    /// `credential_source` or `web_identity_token_file`; `AWS_ROLE_ARN` with `AWS_WEB_IDENTITY_TOKEN_FILE`; the
    /// profile's keys in the shared credentials or config file; its `credential_process`; the ECS container
    /// endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`/`_FULL_URI`); the EC2 instance metadata service (unless
    /// `AWS_EC2_METADATA_DISABLED=true`). The region comes from `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile.
    /// Nothing is fetched here: temporary credentials are fetched on first use.
    public static func resolve(environment: [String: String]) throws(AWSError) -> AWSConfiguration {
        let profiles = try Profiles(environment: environment)
        let source = try profiles.credentialSource()
        guard let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? profiles.value("region"), !region.isEmpty else {
            throw AWSError(
                service: "configuration", operation: "region", code: "NoRegion",
                message: "no AWS region: set AWS_REGION, or region in \(profiles.configFile) for profile \(profiles.name)", requestID: nil, status: 0)
        }
        return AWSConfiguration(
            credentials: CredentialProvider(source, region: region, environment: environment), region: region, profile: profiles.name,
            environment: environment)
    }
}

/// The shared credentials and config files, read for one profile and the profiles it leads to.
struct Profiles {
    let name: String
    let explicit: Bool
    let credentialsFile: String
    let configFile: String
    let environment: [String: String]
    private let credentials: INIFile
    private let config: INIFile

    init(environment: [String: String]) throws(AWSError) {
        let chosen = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
        name = chosen ?? "default"
        explicit = chosen != nil
        let home = environment["HOME"] ?? NSHomeDirectory()
        credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        credentials = INIFile(path: credentialsFile)
        config = INIFile(path: configFile)
        self.environment = environment
        if explicit && section(name) == nil {
            throw Self.problem("the profile \(name) (AWS_PROFILE) is in neither \(credentialsFile) nor \(configFile)")
        }
    }

    /// A profile's settings: the config file's `[profile NAME]` overlaid with the credentials file's `[NAME]`.
    func section(_ profile: String) -> [String: String]? {
        let fromConfig = config.section(profile == "default" ? "default" : "profile \(profile)")
        let fromCredentials = credentials.section(profile)
        if fromConfig == nil && fromCredentials == nil { return nil }
        return (fromConfig ?? [:]).merging(fromCredentials ?? [:]) { _, new in new }
    }

    /// One setting of the chosen profile.
    func value(_ key: String) -> String? { section(name)?[key] }

    /// The first source of the chain that is configured.
    func credentialSource() throws(AWSError) -> CredentialSource {
        if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !key.isEmpty, !secret.isEmpty {
            return .fixed(AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"]), origin: "environment")
        }
        let settings = section(name)
        if let settings, settings["role_arn"] != nil { return try roleSource(name, settings, visited: []) }
        if let file = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], let role = environment["AWS_ROLE_ARN"], !file.isEmpty, !role.isEmpty {
            return .webIdentity(roleARN: role, tokenFile: file, sessionName: environment["AWS_ROLE_SESSION_NAME"] ?? Self.defaultSessionName())
        }
        if let settings, let source = try keySource(name, settings) { return source }
        if let container = containerSource() { return container }
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" { return instanceMetadataSource() }
        throw Self.problem(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile with keys, a role or a credential_process in \(credentialsFile) or \(configFile)",
            code: "NoCredentials")
    }

    private func keySource(_ profile: String, _ settings: [String: String]) throws(AWSError) -> CredentialSource? {
        if settings["sso_start_url"] != nil || settings["sso_session"] != nil {
            throw Self.problem(
                "profile \(profile) signs in through IAM Identity Center (SSO), which pipeline does not do; run `aws sso login` and `eval \"$(aws configure export-credentials --profile \(profile) --format env)\"` first, or use a role")
        }
        if let key = settings["aws_access_key_id"], let secret = settings["aws_secret_access_key"] {
            let file = credentials.section(profile)?["aws_access_key_id"] != nil ? credentialsFile : configFile
            return .fixed(AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: settings["aws_session_token"]), origin: "\(file) [\(profile)]")
        }
        if let command = settings["credential_process"], !command.isEmpty { return .process(command: command, profile: profile) }
        return nil
    }

    private func roleSource(_ profile: String, _ settings: [String: String], visited: [String]) throws(AWSError) -> CredentialSource {
        let arn = settings["role_arn"] ?? ""
        if settings["mfa_serial"] != nil {
            throw Self.problem("profile \(profile) assumes \(arn) with an MFA code (mfa_serial), which an unattended pipeline cannot type; use a role without MFA for deploys")
        }
        var duration: Int?
        if let text = settings["duration_seconds"] {
            guard let seconds = Int(text), seconds >= 900 else {
                throw Self.problem("profile \(profile): duration_seconds must be a whole number of seconds, at least 900 (got \(text))")
            }
            duration = seconds
        }
        let session = settings["role_session_name"] ?? Self.defaultSessionName()
        if let file = settings["web_identity_token_file"] {
            return .webIdentity(roleARN: arn, tokenFile: file, sessionName: session)
        }
        let request = RoleRequest(arn: arn, sessionName: session, externalID: settings["external_id"], durationSeconds: duration)
        if let sourceProfile = settings["source_profile"] {
            let chain = visited + [profile]
            guard let sourceSettings = section(sourceProfile) else {
                throw Self.problem("profile \(profile) names source_profile \(sourceProfile), which is in neither \(credentialsFile) nor \(configFile)")
            }
            if sourceProfile != profile, sourceSettings["role_arn"] != nil {
                if chain.contains(sourceProfile) {
                    throw Self.problem("the profiles' source_profile settings go round in a circle: \((chain + [sourceProfile]).joined(separator: " → "))")
                }
                return .assumeRole(request, source: try roleSource(sourceProfile, sourceSettings, visited: chain))
            }
            guard let inner = try keySource(sourceProfile, sourceSettings) else {
                throw Self.problem("profile \(profile) takes its credentials from source_profile \(sourceProfile), which has no keys or credential_process")
            }
            return .assumeRole(request, source: inner)
        }
        switch settings["credential_source"] {
        case "Environment":
            guard let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
                throw Self.problem("profile \(profile) takes its credentials from the environment (credential_source), but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
            }
            return .assumeRole(request, source: .fixed(AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"]), origin: "environment"))
        case "EcsContainer":
            guard let container = containerSource() else {
                throw Self.problem("profile \(profile) takes its credentials from the ECS container (credential_source), but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set")
            }
            return .assumeRole(request, source: container)
        case "Ec2InstanceMetadata":
            return .assumeRole(request, source: instanceMetadataSource())
        case let other?:
            throw Self.problem("profile \(profile): credential_source must be Environment, EcsContainer or Ec2InstanceMetadata (got \(other))")
        case nil:
            throw Self.problem("profile \(profile) names role_arn \(arn) but neither source_profile, credential_source nor web_identity_token_file to assume it with")
        }
    }

    private func containerSource() -> CredentialSource? {
        let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let tokenFile = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            return .container(url: "http://169.254.170.2\(relative)", token: token, tokenFile: tokenFile)
        }
        if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            return .container(url: full, token: token, tokenFile: tokenFile)
        }
        return nil
    }

    private func instanceMetadataSource() -> CredentialSource {
        .instanceMetadata(
            endpoint: environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? value("ec2_metadata_service_endpoint") ?? "http://169.254.169.254",
            timeout: environment["AWS_METADATA_SERVICE_TIMEOUT"].flatMap(Double.init) ?? value("metadata_service_timeout").flatMap(Double.init) ?? 1,
            attempts: environment["AWS_METADATA_SERVICE_NUM_ATTEMPTS"].flatMap(Int.init) ?? value("metadata_service_num_attempts").flatMap(Int.init) ?? 1)
    }

    static func defaultSessionName() -> String { "pipeline-\(Int(Date().timeIntervalSince1970))" }

    static func problem(_ message: String, code: String = "BadConfiguration") -> AWSError {
        AWSError(service: "configuration", operation: "credentials", code: code, message: message, requestID: nil, status: 0)
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
