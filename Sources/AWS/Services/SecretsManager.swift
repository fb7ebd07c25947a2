import Foundation

/// The Secrets Manager call the runner makes (JSON 1.1).
public enum SecretsManager {
    /// The `X-Amz-Target` prefix.
    public static let targetPrefix = "secretsmanager"

    struct Value: Decodable {
        let SecretString: String?
        let SecretBinary: String?
    }
}

extension AWSClient {
    /// GetSecretValue of the current version of `secret` (ARN or name); with `jsonKey`, that key of the JSON object
    /// the secret holds. A binary secret is refused (a stage variable holds text).
    public func secretValue(_ secret: String, jsonKey: String? = nil) async throws(AWSError) -> String {
        let answer = try await json(
            .secretsManager, targetPrefix: SecretsManager.targetPrefix, operation: "GetSecretValue", input: ["SecretId": secret],
            as: SecretsManager.Value.self)
        let problem = { (message: String) in
            AWSError(service: "secretsmanager", operation: "GetSecretValue", code: "UnusableSecret", message: message, requestID: nil, status: 200)
        }
        guard let text = answer.SecretString else {
            throw problem("secret \(secret) holds binary data; a stage can only be given a text secret")
        }
        guard let jsonKey else { return text }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw problem("secret \(secret) is not a JSON object, so it has no key \(jsonKey)")
        }
        guard let value = object[jsonKey] else {
            throw problem("secret \(secret) has no key \(jsonKey); its keys are \(object.keys.sorted().joined(separator: ", "))")
        }
        if let string = value as? String { return string }
        if let number = value as? NSNumber { return number.stringValue }
        throw problem("the key \(jsonKey) of secret \(secret) holds an object or list, not text")
    }
}
