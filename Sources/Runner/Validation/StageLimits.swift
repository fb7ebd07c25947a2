import PipelineDSL
import StageContract

/// The durations and counts a stage may have.
enum StageLimits {
    static func problems(of stage: Stage, plan: Plan) -> [String] {
        var found: [String] = []
        func duration(_ name: String, _ seconds: Double?, allowZero: Bool = false) {
            guard let seconds else { return }
            if !seconds.isFinite || seconds < 0 || (!allowZero && seconds == 0) {
                found.append("invalid duration: \(name) must be \(allowZero ? "0 or more" : "more than 0") seconds, got \(seconds)")
            }
        }
        func count(_ name: String, _ value: Int, _ range: ClosedRange<Int>) {
            if !range.contains(value) {
                found.append("invalid count: \(name) must be \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
        }
        duration("timeout", stage.timeoutSeconds)
        if let retry = stage.retry {
            count("retries", retry.attempts, 0...100)
            duration("retry backoff", retry.backoffSeconds, allowZero: true)
        }
        if let service = stage.service, plan.service(named: service) == nil {
            found.append("belongs to unknown service '\(service)'")
        }
        switch stage.spec {
        case .updateService(let spec):
            duration("wait timeout", spec.waitTimeoutSeconds)
            duration("no-progress timeout", spec.noProgressTimeoutSeconds)
            duration("poll interval", spec.pollIntervalSeconds)
        case .healthCheck(let spec):
            duration("attempt timeout", spec.attemptTimeoutSeconds)
            duration("interval", spec.intervalSeconds, allowZero: true)
            duration("deadline", spec.deadlineSeconds)
            count("consecutive successes", spec.consecutiveSuccesses, 1...1000)
            count("port", spec.port, 1...65535)
        case .approval(let spec):
            if spec.approvers.isEmpty {
                found.append("an approval needs at least one approver: Approval(approvers: [\"alice\"])")
            } else {
                count("required approvals", spec.required, 1...Set(spec.approvers).count)
            }
            duration("approval timeout", spec.timeoutSeconds)
        case .dnsRecord(let spec):
            if let ttl = spec.record.ttl { count("TTL", ttl, 0...2_147_483_647) }
            if spec.record.alias == nil && spec.record.values.isEmpty {
                found.append("the DNS record has no value")
            }
        case .push(let spec):
            found += ImageTags.problems(of: spec, environment: plan.environment.name)
        case .shell(let spec):
            if spec.command.isEmpty { found.append("the shell command is empty") }
        default:
            break
        }
        return found
    }
}
