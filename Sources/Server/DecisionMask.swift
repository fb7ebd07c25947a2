import Foundation
import PipelineDSL
import Runner
import Stages

/// What people write with a decision (an approval's comment, a rejection's reason) is kept in the state and shown
/// to every viewer, so it is masked first, as logs are: the runner's own secrets and the run's plan's secrets.
public enum DecisionMask {
    /// `text` masked; refuses (saying so) when the plan's secrets cannot be read to mask it with.
    public static func masked(_ text: String, plan: Plan, environment: [String: String]) async throws -> String {
        let values: [String: [String: String]]
        do {
            values = try await SecretResolver.resolve(plan, environment: environment, secretsManager: SecretsManagerLookup(plan.environment, environment: environment).value)
        } catch {
            throw DecisionMaskError(
                description: "the pipeline's secrets could not be read to mask the comment with (\(error.messages.joined(separator: "; "))); decide without a comment, or fix access to the secrets")
        }
        let masker = SecretMasker()
        masker.add(SecretResolver.maskedValues(values, environment: environment))
        return masker.mask(text)
    }
}

/// A comment or reason could not be masked, so it is not kept.
public struct DecisionMaskError: Error, CustomStringConvertible, Sendable {
    public let description: String
}
