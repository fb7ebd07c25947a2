import PipelineDSL

/// Reads the values of the secrets a plan names, before anything runs.
public enum SecretResolver {
    /// Variables of the runner's environment that are always masked.
    public static let alwaysMasked = [
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PIPELINE_GIT_TOKEN", "PIPELINE_GIT_SSH_PASSPHRASE",
    ]

    /// Every stage's secrets by variable name; refused, naming each stage, when one cannot be read. Secrets
    /// Manager references are read through `secretsManager` (each reference once), which throws an error that
    /// says what went wrong without the value.
    public static func resolve(
        _ plan: Plan, environment: [String: String], secretsManager: (SecretReference) throws -> String
    ) throws(LoadError) -> [String: [String: String]] {
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
                    let result = fetched[binding.reference] ?? Result { try secretsManager(binding.reference) }
                    fetched[binding.reference] = result
                    switch result {
                    case .success(let value): resolved[stage.id, default: [:]][binding.name] = value
                    case .failure(let error):
                        problems.append("stage '\(stage.id)': secret \(binding.name) cannot be read from AWS Secrets Manager: \(error)")
                    }
                }
            }
        }
        guard problems.isEmpty else { throw LoadError(.definition, problems) }
        return resolved
    }

    /// Every value the run must mask: the resolved secrets and the runner's own credentials.
    public static func maskedValues(_ resolved: [String: [String: String]], environment: [String: String]) -> [String] {
        resolved.values.flatMap(\.values) + alwaysMasked.compactMap { environment[$0] }
    }
}
