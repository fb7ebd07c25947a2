import PipelineDSL
import StageContract

/// A rollback that is refused before anything changed.
public struct RollbackRefusal: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Refused because another run holds the environment (exit 3), not because of what was asked (exit 2).
    public let busy: Bool

    public init(_ message: String, busy: Bool = false) {
        self.message = message
        self.busy = busy
    }

    public var description: String { message }
}

/// What `pipeline rollback` decides before it changes anything: which environment, which deployment it goes back
/// to (`--to previous` or a commit), and whether that can be done; and the one-stage plan of the rollback run.
/// What ECS and the registry say comes in from the caller, so that the rules stay here and the AWS calls there.
public struct RollbackPlanner: Sendable {
    /// What `--to` names.
    public enum Selector: Sendable, Equatable {
        /// The last deployment on another task definition than the one running now.
        case previous
        /// A commit, by its full SHA or a prefix of at least 4 digits (lower-cased).
        case commit(String)

        /// `previous`, or a SHA (at least 4 ASCII hexadecimal digits).
        public init(_ text: String) throws(RollbackRefusal) {
            if text == "previous" {
                self = .previous
            } else if (4...40).contains(text.utf8.count), text.isASCIIHex {
                self = .commit(text.lowercased())
            } else {
                throw RollbackRefusal("--to takes a commit SHA (at least 4 hex digits) or previous; got '\(text)'")
            }
        }
    }

    /// Where the rollback goes.
    public struct Target: Sendable {
        /// The commit (empty when unknown).
        public let sha: String
        public let taskDefinitionArn: String
        /// The stored definition, to register again should the revision be INACTIVE.
        public let taskDefinition: String?
        public let image: String?
        /// The deployment record it was found in (nil: found among the family's revisions).
        public let deployed: DeploymentRecord?

        public init(sha: String, taskDefinitionArn: String, taskDefinition: String?, image: String?, deployed: DeploymentRecord?) {
            self.sha = sha
            self.taskDefinitionArn = taskDefinitionArn
            self.taskDefinition = taskDefinition
            self.image = image
            self.deployed = deployed
        }
    }

    /// A revision of the service's task-definition family, with its images, as ECS describes it.
    public struct Revision: Sendable {
        public let arn: String
        public let images: [String]

        public init(arn: String, images: [String]) {
            self.arn = arn
            self.images = images
        }
    }

    /// The environment's plan.
    public let plan: Plan
    /// The service, as the pipeline names it.
    public let service: String
    /// How the service is deployed in this environment.
    public let update: UpdateServiceSpec
    /// Its health check, which the rollback runs too.
    public let health: HealthCheckSpec?
    /// Its image repository.
    public let repository: String

    /// The planner for `service` in `plan`'s environment; refuses when the environment does not deploy it.
    public init(plan: Plan, service: String) throws(RollbackRefusal) {
        guard let update = plan.stages.lazy.compactMap({ stage -> UpdateServiceSpec? in
            if case .updateService(let spec) = stage.spec, spec.service == service { return spec }
            return nil
        }).first else {
            let known = Set(plan.stages.compactMap(\.service)).sorted().joined(separator: ", ")
            throw RollbackRefusal("environment \(plan.environment.name) deploys no service \(service) (it deploys: \(known))")
        }
        guard let repository = plan.service(named: service)?.repository else { throw RollbackRefusal("the pipeline has no service \(service)") }
        self.plan = plan
        self.service = service
        self.update = update
        self.repository = repository
        health = plan.stages.lazy.compactMap { stage -> HealthCheckSpec? in
            if case .healthCheck(let spec) = stage.spec, spec.service == service { return spec }
            return nil
        }.first
    }

    /// The one environment `service` was deployed to, or a refusal asking for --env.
    public static func onlyEnvironment(of service: String, store: StateStore) throws -> String {
        let environments = Set(try store.deployments(service: service, environment: nil).map(\.environment)).sorted()
        guard environments.count == 1 else {
            throw RollbackRefusal(
                environments.isEmpty
                    ? "no deployments of \(service) are recorded here; name the environment with --env"
                    : "\(service) was deployed to \(environments.joined(separator: " and ")); name one with --env")
        }
        return environments[0]
    }

    /// Refuses (busy) while another live run holds the environment.
    public func requireIdle(store: StateStore) throws {
        if let owner = try store.liveLockOwner(environment: plan.environment.name) {
            throw RollbackRefusal(
                "environment \(plan.environment.name) is busy: run \(owner.id) (\(owner.status.rawValue), started by \(owner.user), pid \(owner.pid ?? 0)) holds it; wait for it to end",
                busy: true)
        }
    }

    /// What `selector` names, given the service's deployment records (newest first) and the revision it runs now:
    /// a recorded deployment, else a revision of its family whose image is tagged with the SHA (`revisions` is
    /// asked only then).
    public func target(
        _ selector: Selector, records: [DeploymentRecord], current: String, revisions: (_ family: String) async throws -> [Revision]
    ) async throws -> Target {
        let usable = records.filter { $0.taskDefinitionArn != nil }
        let prefix: String
        switch selector {
        case .previous:
            guard let record = usable.first(where: { $0.taskDefinitionArn != current }) else {
                throw RollbackRefusal("there is no earlier deployment to go back to (\(records.count) recorded, none on another task definition than \(Self.revision(current)))")
            }
            return Target(sha: record.sha, taskDefinitionArn: record.taskDefinitionArn!, taskDefinition: record.taskDefinition, image: record.image, deployed: record)
        case .commit(let sha):
            prefix = sha
        }
        let shas = Set(usable.map(\.sha).filter { $0.hasPrefix(prefix) })
        if shas.count > 1 {
            throw RollbackRefusal("\(prefix) is ambiguous: it starts \(shas.sorted().map { String($0.prefix(12)) }.joined(separator: ", ")); give more of the SHA")
        }
        if let sha = shas.first, let record = usable.first(where: { $0.sha == sha }) {
            return Target(sha: sha, taskDefinitionArn: record.taskDefinitionArn!, taskDefinition: record.taskDefinition, image: record.image, deployed: record)
        }
        // Not in the records: look through the family's revisions for an image tagged with the SHA.
        let family = String(current.split(separator: "/").last?.split(separator: ":").first ?? "")
        var found: [(sha: String, arn: String, image: String)] = []
        for revision in try await revisions(family) {
            for image in revision.images {
                guard let colon = image.lastIndex(of: ":"), !image.contains("@") else { continue }
                let tag = image[image.index(after: colon)...].lowercased()
                if tag.isCommitID, tag.hasPrefix(prefix) { found.append((tag, revision.arn, image)) }
            }
        }
        let distinct = Set(found.map(\.sha))
        if distinct.count > 1 {
            throw RollbackRefusal("\(prefix) is ambiguous among the revisions of \(family): \(distinct.sorted().map { String($0.prefix(12)) }.joined(separator: ", "))")
        }
        guard let match = found.first else {
            throw RollbackRefusal("\(prefix) was never deployed for this service: no deployment record and no ACTIVE revision of \(family) has an image tagged with it")
        }
        return Target(sha: match.sha, taskDefinitionArn: match.arn, taskDefinition: nil, image: match.image, deployed: nil)
    }

    /// Checks the target's revision as ECS describes it (`status`) and returns a note for what will be shown: an
    /// INACTIVE (deregistered) revision is registered again from ECS's own copy of it.
    public func check(_ target: Target, status: String) throws -> String {
        status == "INACTIVE" ? " (INACTIVE: ECS's copy of it is registered again)" : ""
    }

    /// The rollback run's plan: one rollback stage putting the service on `target` with `image`, then its health
    /// check.
    public func rollbackPlan(to target: Target, image: String) -> Plan {
        var spec = RollbackSpec(
            service: service, update: update, taskDefinitionArn: target.taskDefinitionArn, taskDefinition: target.taskDefinition,
            sha: target.sha, image: image, healthCheck: health)
        // The environment's moving tags (`sv-user:prod`) follow what it runs: back to this image once it is healthy.
        for case .push(let push) in plan.stages.map(\.spec) where push.service == service && !(push.movingTags ?? []).isEmpty {
            spec.repository = push.repository
            spec.movingTags = push.movingTags
        }
        let stage = Stage(id: "\(service).rollback", service: service, spec: .rollback(spec))
        return Plan(
            pipeline: plan.pipeline, source: plan.source, parallelism: 1, environment: plan.environment, services: plan.services,
            notifications: plan.notifications, stages: [stage])
    }

    /// A commit as shown: its first 12 digits, or "(unknown commit)".
    public static func short(_ sha: String) -> String { sha.isEmpty ? "(unknown commit)" : String(sha.prefix(12)) }
    /// A task definition's `family:revision`.
    public static func revision(_ arn: String) -> String { String(arn.split(separator: "/").last ?? Substring(arn)) }
}
