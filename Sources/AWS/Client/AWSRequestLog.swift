import Foundation
import Synchronization

/// Where a stage process notes each AWS request it makes (service, operation, outcome, seconds), one JSON line
/// each, in the file `PIPELINE_AWS_REQUEST_LOG` names; the runner moves the lines into the state when the stage
/// ends, and `pipeline serve` exports them as metrics. Without the variable nothing is written.
public enum AWSRequestLog {
    /// The variable naming the file.
    public static let variable = "PIPELINE_AWS_REQUEST_LOG"

    private static let descriptor = Mutex<Int32?>(nil)

    /// One request's line (StageContract's `AWSRequestLine` reads it): what the metrics group by.
    struct Entry: Encodable {
        let service: String
        let operation: String
        /// `success`, `throttled`, `client-error`, `server-error` or `network-error`.
        let outcome: String
        let seconds: Double
    }

    /// Notes one request (each attempt of a retried one counts).
    static func record(service: String, operation: String, status: Int, code: String?, seconds: Double) {
        guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else { return }
        let outcome = switch status {
        case 200..<300: "success"
        case 0: "network-error"
        case 429: "throttled"
        case 400..<500 where (code ?? "").contains("Throttl") || code == "TooManyRequestsException" || code == "RequestLimitExceeded": "throttled"
        case 400..<500: "client-error"
        default: "server-error"
        }
        guard var line = try? JSONEncoder().encode(Entry(service: service, operation: operation, outcome: outcome, seconds: seconds)) else { return }
        line.append(0x0A)
        descriptor.withLock { descriptor in
            if descriptor == nil {
                let opened = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                if opened >= 0 { descriptor = opened }
            }
            // A line lost here costs one sample of a metric, never the request: the stage goes on.
            if let descriptor { _ = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } }
        }
    }

}
