import Foundation
import PipelineDSL
import Stages
import Synchronization

/// The forges' secrets (webhook secrets, the GitHub token), read once from the server's environment or Secrets
/// Manager and kept in memory only; a read that failed is tried again at the next need.
final class ForgeSecrets: Sendable {
    private let settings: ServerSettings
    private let known = Mutex<[SecretReference: String]>([:])

    init(settings: ServerSettings) {
        self.settings = settings
    }

    /// The value of `reference`, or an error that names where it should be (never the value).
    func value(_ reference: SecretReference) async throws -> String {
        if let value = known.withLock({ $0[reference] }) { return value }
        let value: String
        switch reference.store {
        case .environment:
            guard let found = settings.runEnvironment[reference.name], !found.isEmpty else {
                throw ForgeSecretError(message: "the variable \(reference.name) is not set in the server's environment; export it and restart `pipeline serve`")
            }
            value = found
        case .secretsManager:
            guard let target = settings.manifest.environments.first else {
                throw ForgeSecretError(message: "no environment to read Secrets Manager in")
            }
            do {
                value = try await SecretsManagerLookup(target, environment: settings.runEnvironment).value(reference)
            } catch {
                throw ForgeSecretError(message: "reading \(reference.name) from Secrets Manager: \(error)")
            }
        }
        known.withLock { $0[reference] = value }
        return value
    }
}

struct ForgeSecretError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
