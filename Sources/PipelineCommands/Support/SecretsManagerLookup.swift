import AWS
import Foundation
import PipelineDSL
import Stages

/// Reads Secrets Manager references for the runner, as the plan's environment (its region and role) sees them.
final class SecretsManagerLookup: @unchecked Sendable {
    private let target: EnvironmentSpec
    private let environment: [String: String]
    private var client: AWSClient?

    init(_ target: EnvironmentSpec, environment: [String: String]) {
        self.target = target
        self.environment = environment
    }

    /// The value of `reference`, waiting for the call (the commands that resolve secrets are synchronous).
    func value(_ reference: SecretReference) throws -> String {
        if client == nil { client = AWSClient(configuration: try StageAWS.configuration(for: target, environment: environment)) }
        let client = client!
        return try blocking { () async throws(AWSError) -> String in try await client.secretValue(reference.name, jsonKey: reference.jsonKey) }
    }
}

/// Runs `work` on the concurrency pool and waits for it: for synchronous commands that make one async call.
func blocking<Value: Sendable, Failure: Error>(_ work: @escaping @Sendable () async throws(Failure) -> Value) throws(Failure) -> Value {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<Value, Failure>?
    Task.detached {
        do throws(Failure) { result = .success(try await work()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result!.get()
}
