import Foundation
import PipelineDSL
import Stages
import Testing
import TestSupport

/// Each kind of probe against runner/dev/service-server in each of its modes, on loopback.
@Suite struct HealthProbeTests {
    func server(_ protocolName: String, _ mode: String) throws -> (PortServer, Int) {
        let server = ServerProcess.script("service-server", ["--protocol", protocolName, "--mode", mode])
        return (server, try server.port())
    }

    func check(_ probe: HealthProbe, port: Int, deadline: Double = 1, successes: Int = 1, host: String = "127.0.0.1", connectTo: [String] = []) async -> HealthCheckRun.Outcome {
        await HealthCheckRun(
            HealthCheckSpec(
                service: "test", probe: probe, host: host, port: port, attemptTimeoutSeconds: 0.5, intervalSeconds: 0.1,
                deadlineSeconds: deadline, consecutiveSuccesses: successes)
        ).run(prober: HealthProber(connectTo: connectTo))
    }

    /// A check expected to fail on what the server answers, asked again (up to 20 times) while its last attempt
    /// only timed out: on a loaded machine a server can take longer than a short deadline to answer at all.
    func failingCheck(_ probe: HealthProbe, port: Int, deadline: Double) async -> HealthCheckRun.Outcome {
        var outcome = await check(probe, port: port, deadline: deadline)
        for _ in 0..<20 where !outcome.healthy && outcome.summary.contains("Timeout was reached") {
            outcome = await check(probe, port: port, deadline: deadline)
        }
        return outcome
    }

    @Test func httpProbesJudgeStatusBodyAndJSON() async throws {
        let (healthyServer, healthy) = try server("http", "healthy")
        // Deadlines are generous where success is expected: while other tests block the test process's few
        // concurrency threads (waiting for child processes), an attempt can sit ready for tens of seconds.
        let outcome = await check(.http("/health", jsonField: "status", equals: "UP"), port: healthy, deadline: 120, successes: 2)
        #expect(outcome.healthy, "\(outcome.summary)")
        #expect(outcome.attempts.count == 2)
        #expect(outcome.summary.contains("HTTP 200, status=UP"))
        let wrongField = await failingCheck(.http("/health", jsonField: "status", equals: "DOWN"), port: healthy, deadline: 0.3)
        #expect(!wrongField.healthy && wrongField.summary.contains("status is \"UP\" (wanted \"DOWN\")"), "\(wrongField.summary)")
        let wrongBody = await failingCheck(.http("/health", bodyContains: "ready"), port: healthy, deadline: 0.3)
        #expect(!wrongBody.healthy && wrongBody.summary.contains("body without \"ready\""))

        let (failingServer, failing) = try server("http", "failing")
        let failed = await failingCheck(.http("/health"), port: failing, deadline: 0.5)
        #expect(!failed.healthy)
        #expect(failed.summary.contains("last: HTTP 500 (wanted 200-299)"), "\(failed.summary)")
        withExtendedLifetime((healthyServer, failingServer)) {}
    }

    @Test func aServiceHealthyOnlyAfterSomeSecondsPassesWithinTheDeadline() async throws {
        // Failing for its first 5 s: the first attempt comes well within them, however loaded the host.
        let (server, port) = try server("http", "slow:5")
        let outcome = await check(.http("/health"), port: port, deadline: 120)
        #expect(outcome.healthy, "\(outcome.summary)")
        #expect(outcome.attempts.first?.healthy == false)
        withExtendedLifetime(server) {}
    }

    @Test func aHangingServiceFailsEachAttemptAtItsTimeout() async throws {
        let (server, port) = try server("http", "hang")
        let outcome = await check(.http("/health"), port: port, deadline: 1)
        #expect(!outcome.healthy)
        #expect(outcome.summary.contains("Timeout") || outcome.summary.contains("timed out"), "\(outcome.summary)")
        withExtendedLifetime(server) {}
    }

    @Test func grpcUnaryAndTheStandardHealthService() async throws {
        let (healthyServer, healthy) = try server("grpc", "healthy")
        let unary = await check(.grpc("/user.UserService/Check"), port: healthy, deadline: 120)
        #expect(unary.healthy && unary.summary.contains("grpc-status 0"), "\(unary.summary)")
        let standard = await check(.grpcHealth(), port: healthy, deadline: 120)
        #expect(standard.healthy && standard.summary.contains("health SERVING"), "\(standard.summary)")

        let (notServingServer, notServing) = try server("grpc", "not-serving")
        let down = await failingCheck(.grpcHealth("user.UserService"), port: notServing, deadline: 0.3)
        #expect(!down.healthy && down.summary.contains("health NOT_SERVING"), "\(down.summary)")

        let (failingServer, failing) = try server("grpc", "failing")
        let unavailable = await failingCheck(.grpc("/user.UserService/Check"), port: failing, deadline: 0.5)
        #expect(!unavailable.healthy && unavailable.summary.contains("grpc-status 14"), "\(unavailable.summary)")
        // Every attempt gets an answer (no connection left broken by the one before).
        #expect(unavailable.attempts.allSatisfy { $0.detail.contains("grpc-status 14") }, "\(unavailable.attempts)")
        withExtendedLifetime((healthyServer, notServingServer, failingServer)) {}
    }

    @Test func tcpAndTheServicesRealNameThroughConnectTo() async throws {
        let (server, port) = try server("http", "healthy")
        let tcp = await check(.tcp, port: port, deadline: 120)
        #expect(tcp.healthy)
        let closed = await check(.tcp, port: freePort(), deadline: 0.3)
        #expect(!closed.healthy, "\(closed.summary)")
        #expect(closed.attempts.allSatisfy { !$0.healthy && $0.detail.lowercased().contains("connect") }, "\(closed.attempts)")
        // The name does not resolve; --connect-to sends it to the local stand-in, Host header unchanged.
        let named = await check(
            .http("/health"), port: 5003, deadline: 120, host: "api-service.staging.comyno.net",
            connectTo: ["api-service.staging.comyno.net:5003:127.0.0.1:\(port)"])
        #expect(named.healthy, "\(named.summary)")
        withExtendedLifetime(server) {}
    }
}
