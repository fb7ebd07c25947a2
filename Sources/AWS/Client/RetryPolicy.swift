/// botocore's "standard" retry mode: throttling and transient errors are tried again with exponential backoff and
/// full jitter, up to a number of attempts, while a retry quota lasts; nothing else is.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var maxAttempts = 3
    /// The longest wait between attempts, in seconds.
    public var maxBackoff = 20.0
    /// Tokens in the quota; a retry costs 5 (10 after a timeout), a success gives 1 back.
    public private(set) var quota = 500

    /// A policy with `maxAttempts` attempts.
    public init(maxAttempts: Int = 3) {
        self.maxAttempts = maxAttempts
    }

    static let throttling: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    ]
    static let transient: Set<String> = ["RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"]
    static let transientStatus: Set<Int> = [500, 502, 503, 504]

    /// Whether an attempt that ended in `error` may be tried again (authentication, validation and access errors
    /// never are).
    public static func isRetryable(_ error: AWSError) -> Bool {
        if throttling.contains(error.code) || transient.contains(error.code) { return true }
        if error.status == 0 { return ["connect", "timeout", "transfer"].contains(error.code) }
        return transientStatus.contains(error.status)
    }

    /// Seconds to wait before attempt `attempt + 1` (the first retry is attempt 2), for a random `unit` in [0, 1).
    public func backoff(afterAttempt attempt: Int, unit: Double) -> Double {
        min(maxBackoff, unit * Double(1 << min(attempt - 1, 20)))
    }

    /// Takes the cost of retrying `error` from the quota; false when the quota cannot pay (then do not retry).
    public mutating func spend(for error: AWSError) -> Bool {
        let cost = error.code == "timeout" ? 10 : 5
        guard quota >= cost else { return false }
        quota -= cost
        return true
    }

    /// Gives a token back after a success.
    public mutating func refund() {
        quota = min(500, quota + 1)
    }
}
