import PipelineDSL
import Foundation

/// The variable that carries a git HTTPS token, to the fetch and to checkout stages.
public enum GitTokenVariable {
    public static let name = "PIPELINE_GIT_TOKEN"
}

/// Why the repository's token could not be had.
public struct SourceTokenError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Reads the values of the secrets a plan names, before anything runs.
public enum SecretResolver {
    /// Variables of the runner's environment that are always masked.
    public static let alwaysMasked = [
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN", GitTokenVariable.name,
        "PIPELINE_GIT_SSH_PASSPHRASE", "PIPELINE_REGISTRY_PASSWORD",
    ]

    /// Every stage's secrets by variable name; refused, naming each stage, when one cannot be read. Secrets
    /// Manager references are read through `secretsManager` (each reference once), which throws an error that
    /// says what went wrong without the value.
    public static func resolve(
        _ plan: Plan, environment: [String: String], secretsManager: (SecretReference) async throws -> String
    ) async throws(LoadError) -> [String: [String: String]] {
        var resolved: [String: [String: String]] = [:]
        var problems: [String] = []
        var fetched: [SecretReference: Result<String, any Error>] = [:]
        for stage in plan.stages {
            for binding in stage.secrets {
                switch binding.reference.store {
                case .environment:
                    if let value = environment[binding.reference.name], !value.isEmpty {
                        resolved[stage.id, default: [:]][binding.name] = value
                    } else {
                        problems.append(
                            "stage '\(stage.id)': secret \(binding.name) comes from the environment variable \(binding.reference.name), which is not set; export it before the run")
                    }
                case .secretsManager:
                    let result: Result<String, any Error>
                    if let known = fetched[binding.reference] {
                        result = known
                    } else {
                        do { result = .success(try await secretsManager(binding.reference)) } catch { result = .failure(error) }
                    }
                    fetched[binding.reference] = result
                    switch result {
                    case .success(let value): resolved[stage.id, default: [:]][binding.name] = value
                    case .failure(let error):
                        problems.append("stage '\(stage.id)': secret \(binding.name) cannot be read from AWS Secrets Manager: \(error)")
                    }
                }
            }
        }
        if let reference = plan.source.token {
            // The repository's token: for the fetch before the run ("(source)") and for checkout stages, which
            // fetch submodules.
            let cached = fetched
            let read: Result<String, any Error>
            do {
                read = .success(
                    try await sourceToken(reference, environment: environment) { wanted in
                        if let known = cached[wanted] { return try known.get() }
                        return try await secretsManager(wanted)
                    })
            } catch {
                read = .failure(error)
            }
            switch read {
            case .success(let token):
                resolved[sourceKey] = [GitTokenVariable.name: token]
                for stage in plan.stages where stage.kind == .checkout {
                    resolved[stage.id, default: [:]][GitTokenVariable.name] = token
                }
            case .failure(let error):
                problems.append("the repository's token \(error)")
            }
        }
        guard problems.isEmpty else { throw LoadError(.definition, problems) }
        return resolved
    }

    /// The pseudo-stage whose secrets are those of the run itself: the repository's token.
    public static let sourceKey = "(source)"

    /// The repository's token from where `reference` says; the error says what is wrong without the value.
    public static func sourceToken(
        _ reference: SecretReference, environment: [String: String], secretsManager: (SecretReference) async throws -> String
    ) async throws -> String {
        switch reference.store {
        case .environment:
            guard let value = environment[reference.name], !value.isEmpty else {
                throw SourceTokenError(
                    "comes from the environment variable \(reference.name), which is not set; export it before the run")
            }
            return value
        case .secretsManager:
            do {
                return try await secretsManager(reference)
            } catch {
                throw SourceTokenError("cannot be read from AWS Secrets Manager: \(error)")
            }
        }
    }

    /// Every value the run must mask: the resolved secrets and the runner's own credentials.
    public static func maskedValues(_ resolved: [String: [String: String]], environment: [String: String]) -> [String] {
        // The container credentials token may come from a file instead; unreadable, it is no value to mask here.
        let tokenFile = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        return resolved.values.flatMap(\.values) + alwaysMasked.compactMap { environment[$0] }
            + [tokenFile?.trimmingCharacters(in: .whitespacesAndNewlines)].compactMap { $0 }
    }
}
