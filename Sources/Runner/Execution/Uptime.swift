import Foundation

/// Time since the process started (first touched in `main`), for `--verbose` diagnostics of where a command's
/// time goes.
public enum Uptime {
    public static let start = ContinuousClock.now

    /// Milliseconds since the start, to one decimal.
    public static var milliseconds: String {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return String(format: "%.1f", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }
}
