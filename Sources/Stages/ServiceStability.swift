import AWS
import Foundation

/// Decides, from successive DescribeServices answers after UpdateService, whether the rollout of one task
/// definition is done, as ECS defines "stable": the deployment of *that* task definition is the only one, it runs
/// the desired count, and its rollout is COMPLETED. Pure: the caller polls and passes the time; deploy and
/// rollback share it.
public struct ServiceStability: Sendable {
    /// What the latest look says.
    public enum Verdict: Equatable, Sendable {
        /// Not there yet; the text says what was seen.
        case waiting(String)
        /// The task definition runs alone, at the desired count.
        case stable
        /// It will not get there; the text says why, with the latest service events.
        case failed(String)
    }

    /// The task definition being rolled out.
    public let target: String
    /// Seconds allowed in all.
    public let totalLimit: Double
    /// Seconds allowed without any change.
    public let noProgressLimit: Double
    private let startedAt: Date
    private var lastChangeAt: Date
    private var lastSignature: String?
    private var sawTarget = false

    /// A watch over the rollout of `target`, starting `at`.
    public init(target: String, totalLimit: Double, noProgressLimit: Double, at start: Date) {
        self.target = target
        self.totalLimit = totalLimit
        self.noProgressLimit = noProgressLimit
        startedAt = start
        lastChangeAt = start
    }

    /// Takes one look at the service at time `now`.
    public mutating func observe(_ service: ECS.Service, at now: Date) -> Verdict {
        let events = service.events.prefix(3).map(\.message)
        let withEvents = { (text: String) in events.isEmpty ? text : "\(text); latest events: \(events.joined(separator: " | "))" }
        guard service.status == "ACTIVE" else { return .failed(withEvents("the service is \(service.status)")) }

        let signature = ([String(service.runningCount)] + service.deployments.map {
            "\($0.id):\($0.status):\($0.runningCount ?? -1):\($0.rolloutState ?? "-"):\($0.failedTasks ?? 0)"
        }).joined(separator: ",")
        if signature != lastSignature {
            lastSignature = signature
            lastChangeAt = now
        }

        let progress: String
        if let mine = service.deployments.first(where: { $0.taskDefinition == target }) {
            sawTarget = true
            if mine.rolloutState == "FAILED" {
                return .failed(withEvents("the rollout failed: \(mine.rolloutStateReason ?? "no reason given")"))
            }
            if mine.status != "PRIMARY", let primary = service.deployments.first(where: { $0.status == "PRIMARY" }) {
                return .failed(withEvents("another deployment (\(primary.taskDefinition)) replaced it"))
            }
            let running = mine.runningCount ?? 0
            let desired = mine.desiredCount ?? service.desiredCount
            let completed = mine.rolloutState == nil || mine.rolloutState == "COMPLETED"
            if service.deployments.count == 1 && running == desired && desired == service.desiredCount && completed {
                return .stable
            }
            progress = "\(running)/\(desired) running, \(service.deployments.count) deployments, rollout \(mine.rolloutState ?? "-")"
                + ((mine.failedTasks ?? 0) > 0 ? ", \(mine.failedTasks!) tasks failed to start" : "")
        } else if sawTarget {
            let now = service.deployments.first { $0.status == "PRIMARY" }?.taskDefinition ?? service.taskDefinition
            return .failed(withEvents("the deployment of \(target) is gone: ECS rolled the service back to \(now) (deployment circuit breaker)"))
        } else {
            progress = "no deployment of \(target) yet (the service is on \(service.taskDefinition))"
        }

        if now.timeIntervalSince(startedAt) > totalLimit {
            return .failed(withEvents("not stable after \(Int(totalLimit))s; last seen: \(progress)"))
        }
        if now.timeIntervalSince(lastChangeAt) > noProgressLimit {
            return .failed(withEvents("no progress for \(Int(noProgressLimit))s; last seen: \(progress)"))
        }
        return .waiting(progress)
    }
}
