import AWS
import Foundation
import PipelineDSL
import Synchronization

/// Reads Secrets Manager references for the runner, as the plan's environment (its region and role) sees them,
/// with one client for all of them.
public final class SecretsManagerLookup: Sendable {
    private let target: EnvironmentSpec
    private let environment: [String: String]
    private let client = Mutex<AWSClient?>(nil)

    public init(_ target: EnvironmentSpec, environment: [String: String]) {
        self.target = target
        self.environment = environment
    }

    /// The value of `reference`.
    public func value(_ reference: SecretReference) async throws -> String {
        let client = try self.client.withLock { client in
            if let client { return client }
            let made = AWSClient(configuration: try StageAWS.configuration(for: target, environment: environment))
            client = made
            return made
        }
        return try await client.secretValue(reference.name, jsonKey: reference.jsonKey)
    }
}
