import Foundation

/// One AWS request a built-in stage made, as the AWS client notes it in `PIPELINE_AWS_REQUEST_LOG` (a JSON line).
public struct AWSRequestLine: Codable, Sendable, Equatable {
    public let service: String
    public let operation: String
    /// `success`, `throttled`, `client-error`, `server-error` or `network-error`.
    public let outcome: String
    public let seconds: Double

    public init(service: String, operation: String, outcome: String, seconds: Double) {
        self.service = service
        self.operation = operation
        self.outcome = outcome
        self.seconds = seconds
    }

    /// The variable naming the file.
    public static let variable = "PIPELINE_AWS_REQUEST_LOG"

    /// The lines of `file` (none when it is missing), skipping one cut short by a killed process.
    public static func read(_ file: URL) throws -> [AWSRequestLine] {
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        let data = try Data(contentsOf: file)
        return data.split(separator: 0x0A).compactMap { try? JSONDecoder().decode(AWSRequestLine.self, from: $0) }
    }
}
