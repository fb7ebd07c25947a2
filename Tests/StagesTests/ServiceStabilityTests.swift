import AWS
import Foundation
import Stages
import Testing

private let old = "arn:aws:ecs:us-east-1:1:task-definition/api:1"
private let new = "arn:aws:ecs:us-east-1:1:task-definition/api:2"

/// A DescribeServices entry as ECS writes it.
private func service(
    desired: Int = 2, running: Int = 2, status: String = "ACTIVE", taskDefinition: String = new,
    deployments: [(id: String, status: String, td: String, running: Int, rollout: String?, failed: Int)], events: [String] = []
) throws -> ECS.Service {
    let json: [String: Any] = [
        "serviceName": "api", "status": status, "taskDefinition": taskDefinition, "desiredCount": desired, "runningCount": running,
        "deployments": deployments.map { d -> [String: Any] in
            var entry: [String: Any] = ["id": d.id, "status": d.status, "taskDefinition": d.td, "desiredCount": desired,
                                        "runningCount": d.running, "failedTasks": d.failed]
            if let rollout = d.rollout { entry["rolloutState"] = rollout; entry["rolloutStateReason"] = "reason for \(rollout)" }
            return entry
        },
        "events": events.map { ["message": $0] },
    ]
    return try JSONDecoder().decode(ECS.Service.self, from: JSONSerialization.data(withJSONObject: json))
}

@Suite struct ServiceStabilityTests {
    let start = Date(timeIntervalSince1970: 1_000_000)
    func at(_ seconds: Double) -> Date { start.addingTimeInterval(seconds) }

    @Test func aRolloutThatCompletesIsStableOnlyWhenItsDeploymentIsTheOnlyOne() throws {
        var watch = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        let starting = try service(deployments: [("d2", "PRIMARY", new, 0, "IN_PROGRESS", 0), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)])
        #expect(watch.observe(starting, at: at(2)) == .waiting("0/2 running, 2 deployments, rollout IN_PROGRESS"))
        let draining = try service(deployments: [("d2", "PRIMARY", new, 2, "IN_PROGRESS", 0), ("d1", "ACTIVE", old, 1, "COMPLETED", 0)])
        guard case .waiting = watch.observe(draining, at: at(4)) else { Issue.record("stable too early"); return }
        let settling = try service(deployments: [("d2", "PRIMARY", new, 2, "IN_PROGRESS", 0)])
        guard case .waiting = watch.observe(settling, at: at(6)) else { Issue.record("stable before COMPLETED"); return }
        let done = try service(deployments: [("d2", "PRIMARY", new, 2, "COMPLETED", 0)])
        #expect(watch.observe(done, at: at(8)) == .stable)
    }

    @Test func aCircuitBreakerRollbackIsAFailureEvenThoughTheServiceEndsStable() throws {
        var watch = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        _ = watch.observe(try service(deployments: [("d2", "PRIMARY", new, 0, "IN_PROGRESS", 3), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)]), at: at(2))
        let rolledBack = try service(
            taskDefinition: old, deployments: [("d3", "PRIMARY", old, 2, "COMPLETED", 0)],
            events: ["(service api) rolling back to deployment d1"])
        #expect(watch.observe(rolledBack, at: at(60)) == .failed(
            "the deployment of \(new) is gone: ECS rolled the service back to \(old) (deployment circuit breaker); latest events: (service api) rolling back to deployment d1"))
    }

    @Test func aFailedRolloutStopsAtOnceWithItsReasonAndEvents() throws {
        var watch = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        let failed = try service(
            deployments: [("d2", "PRIMARY", new, 0, "FAILED", 5), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)],
            events: ["task stopped: Essential container exited", "unable to pull image"])
        #expect(watch.observe(failed, at: at(30)) == .failed(
            "the rollout failed: reason for FAILED; latest events: task stopped: Essential container exited | unable to pull image"))
    }

    @Test func noProgressAndTotalLimitsSayWhatTheyLastSaw() throws {
        var stuck = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 60, at: start)
        let same = try service(deployments: [("d2", "PRIMARY", new, 1, "IN_PROGRESS", 0), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)])
        guard case .waiting = stuck.observe(same, at: at(1)) else { Issue.record("not waiting"); return }
        guard case .waiting = stuck.observe(same, at: at(50)) else { Issue.record("gave up early"); return }
        #expect(stuck.observe(same, at: at(62)) == .failed("no progress for 60s; last seen: 1/2 running, 2 deployments, rollout IN_PROGRESS"))

        var slow = ServiceStability(target: new, totalLimit: 100, noProgressLimit: 60, at: start)
        for (second, running) in [(10.0, 0), (50, 1), (90, 0)] {
            _ = slow.observe(try service(deployments: [("d2", "PRIMARY", new, running, "IN_PROGRESS", 0), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)]), at: at(second))
        }
        let late = slow.observe(try service(deployments: [("d2", "PRIMARY", new, 1, "IN_PROGRESS", 0), ("d1", "ACTIVE", old, 2, "COMPLETED", 0)]), at: at(101))
        #expect(late == .failed("not stable after 100s; last seen: 1/2 running, 2 deployments, rollout IN_PROGRESS"))
    }

    @Test func aServiceThatIsNotActiveOrWasReplacedFails() throws {
        var watch = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        #expect(watch.observe(try service(status: "DRAINING", deployments: []), at: at(1)) == .failed("the service is DRAINING"))
        var replaced = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        let newer = "arn:aws:ecs:us-east-1:1:task-definition/api:3"
        let other = try service(deployments: [("d3", "PRIMARY", newer, 0, "IN_PROGRESS", 0), ("d2", "ACTIVE", new, 2, "IN_PROGRESS", 0)])
        #expect(replaced.observe(other, at: at(5)) == .failed("another deployment (\(newer)) replaced it"))
    }

    @Test func beforeTheDeploymentShowsUpItWaits() throws {
        var watch = ServiceStability(target: new, totalLimit: 900, noProgressLimit: 300, at: start)
        let notYet = try service(taskDefinition: old, deployments: [("d1", "PRIMARY", old, 2, "COMPLETED", 0)])
        #expect(watch.observe(notYet, at: at(1)) == .waiting("no deployment of \(new) yet (the service is on \(old))"))
    }
}
