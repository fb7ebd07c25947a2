import Foundation

/// Runs blocking `work` (a child process and its pipes) on a thread of its own and awaits it, so that it never
/// holds one of the concurrency pool's few threads (two on this kind of machine) while it waits.
public func onOwnThread<Value: Sendable, Failure: Error>(
    _ work: @escaping @Sendable () throws(Failure) -> Value
) async throws(Failure) -> Value {
    let result: Result<Value, Failure> = await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: Result(catching: work)) }
    }
    return try result.get()
}
