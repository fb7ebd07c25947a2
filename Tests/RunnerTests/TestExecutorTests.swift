import CTestExecutor
import Foundation
import Testing
import TestSupport

/// The test process's executor (Tests/CTestExecutor): a job that blocks its thread never keeps another job waiting.
@Suite struct TestExecutorTests {
    @Test func jobsThatBlockTheirThreadsNeverStarveTheOthers() async {
        #expect(pipeline_test_executor_installed() == 1)
        // Eight tasks each block their thread until all eight have started: on the runtime's own pool (one thread
        // per core) the first few would wait for the rest for ever; here each gets a thread. The wait gives up after
        // a minute so that a regression fails instead of hanging.
        let count = 8
        let arrived = Barrier(count)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<count { group.addTask { arrived.arriveAndWait(seconds: 60) } }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results == Array(repeating: true, count: count), "some tasks never got a thread while others blocked theirs")
    }

    @Test func laterJobsRunWhenTheyAreDue() async throws {
        // Task.sleep goes through the deadline hook, on the continuous and the suspending clock.
        let start = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(50))
        try await Task.sleep(until: SuspendingClock.now + .milliseconds(50), clock: .suspending)
        #expect(ContinuousClock.now - start >= .milliseconds(100), "a sleep ended before it was due")
    }
}

/// Waits until `count` threads have arrived.
final class Barrier: @unchecked Sendable {
    private let condition = NSCondition()
    private var arrived = 0
    private let count: Int

    init(_ count: Int) { self.count = count }

    /// Arrives and waits for the others, at most `seconds`; false if they did not all come.
    func arriveAndWait(seconds: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        condition.broadcast()
        let deadline = Date().addingTimeInterval(seconds)
        while arrived < count {
            if !condition.wait(until: deadline) { return arrived >= count }
        }
        return true
    }
}

/// The servers tests start hold none of the test process's other descriptors.
@Suite struct TestServerDescriptorTests {
    @Test func aServerWritingToOurPipeHoldsNothingElseOfOurs() throws {
        // Another test's pipe, open while the server starts: a server holding its write end would keep that test
        // waiting for an EOF until the server went.
        let other = Pipe()
        let output = Pipe()
        let server = try ServerProcess("/bin/sh", ["-c", "echo ready; exec sleep 60"], stdout: output)
        #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) == "ready\n")
        // Looked at once the shell has become `sleep` (what the shell itself opens on its way there is not inherited).
        for _ in 0..<200 where (try? String(contentsOfFile: "/proc/\(server.pid)/comm", encoding: .utf8)) != "sleep\n" {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.pid)/fd")
        #expect(Set(descriptors) == ["0", "1", "2"], "the server holds \(descriptors)")
        withExtendedLifetime(other) {}
    }
}
