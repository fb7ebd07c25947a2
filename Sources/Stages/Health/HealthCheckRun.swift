import Foundation
import PipelineDSL

/// A health check to its end: probes until `consecutiveSuccesses` in a row succeed, or the deadline passes; after
/// a failure it waits longer each time (×1.5, up to four times the interval), after a success the interval.
public struct HealthCheckRun: Sendable {
    /// The probe.
    public let probe: HealthProbe
    /// The host asked.
    public let host: String
    /// The port asked.
    public let port: Int
    /// Seconds per attempt.
    public let attemptTimeout: Double
    /// Seconds between attempts.
    public let interval: Double
    /// Seconds in all.
    public let deadline: Double
    /// Successes in a row needed.
    public let consecutiveSuccesses: Int

    /// The check a stage spec describes.
    public init(_ spec: HealthCheckSpec) {
        probe = spec.probe
        host = spec.host
        port = spec.port
        attemptTimeout = spec.attemptTimeoutSeconds
        interval = spec.intervalSeconds
        deadline = spec.deadlineSeconds
        consecutiveSuccesses = max(1, spec.consecutiveSuccesses)
    }

    /// What came of it.
    public struct Outcome: Sendable {
        /// Whether the service was found healthy.
        public let healthy: Bool
        /// Every attempt.
        public let attempts: [HealthAttempt]
        /// One line: why it passed or failed.
        public let summary: String
    }

    /// Runs the check; `each` hears every attempt as it ends.
    public func run(prober: HealthProber, each: @Sendable (HealthAttempt) -> Void = { _ in }) async -> Outcome {
        let start = ContinuousClock.now
        let limit = start + .milliseconds(Int(deadline * 1000))
        var attempts: [HealthAttempt] = []
        var streak = 0
        var wait = interval
        while true {
            let remaining = Double((limit - ContinuousClock.now).components.seconds)
            let attempt = await prober.probe(probe, host: host, port: port, timeout: max(0.2, min(attemptTimeout, remaining + 1)))
            attempts.append(attempt)
            each(attempt)
            if attempt.healthy {
                streak += 1
                wait = interval
                if streak >= consecutiveSuccesses {
                    return Outcome(
                        healthy: true, attempts: attempts,
                        summary: "healthy: \(streak) in a row after \(attempts.count) attempts (\(attempt.detail), \(attempt.latencyMilliseconds) ms)")
                }
            } else {
                streak = 0
                wait = min(wait * 1.5, interval * 4)
            }
            let next = ContinuousClock.now + .milliseconds(Int((attempt.healthy ? interval : wait) * 1000))
            if next >= limit {
                let last = attempts.last!
                return Outcome(
                    healthy: false, attempts: attempts,
                    summary: "not healthy within \(Int(deadline))s: \(attempts.count) attempts, \(attempts.filter(\.healthy).count) healthy; last: \(last.detail)")
            }
            try? await Task.sleep(until: next, clock: .continuous)
        }
    }
}
