import Foundation

/// The ECS calls the deploy stages make (JSON 1.1, `AmazonEC2ContainerServiceV20141113`), shaped after botocore's
/// model; only the fields the stages read are decoded.
public enum ECS {
    /// The JSON 1.1 target prefix of ECS operations.
    public static let targetPrefix = "AmazonEC2ContainerServiceV20141113"

    /// A registered task definition.
    public struct TaskDefinition: Decodable, Sendable, Equatable {
        /// Its ARN (`...:task-definition/family:revision`).
        public let taskDefinitionArn: String
        /// The family.
        public let family: String
        /// The revision.
        public let revision: Int
        /// `ACTIVE` or `INACTIVE`.
        public let status: String?
        /// The containers' images, in order.
        public let images: [String]

        enum CodingKeys: String, CodingKey { case taskDefinitionArn, family, revision, status, containerDefinitions }
        struct Container: Decodable { let image: String? }

        /// Decodes the answer's `taskDefinition`.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            taskDefinitionArn = try c.decode(String.self, forKey: .taskDefinitionArn)
            family = try c.decode(String.self, forKey: .family)
            revision = try c.decode(Int.self, forKey: .revision)
            status = try c.decodeIfPresent(String.self, forKey: .status)
            images = (try c.decodeIfPresent([Container].self, forKey: .containerDefinitions) ?? []).compactMap(\.image)
        }
    }

    /// A service as DescribeServices tells it.
    public struct Service: Decodable, Sendable, Equatable {
        /// The name.
        public let serviceName: String
        /// `ACTIVE`, `DRAINING`, `INACTIVE`.
        public let status: String
        /// The task definition it is set to.
        public let taskDefinition: String
        /// Tasks wanted.
        public let desiredCount: Int
        /// Tasks running.
        public let runningCount: Int
        /// Its deployments, newest first.
        public let deployments: [Deployment]
        /// Its latest events, newest first.
        public let events: [Event]

        enum CodingKeys: String, CodingKey {
            case serviceName, status, taskDefinition, desiredCount, runningCount, deployments, events
        }

        /// Decodes one entry of `services`.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            serviceName = try c.decode(String.self, forKey: .serviceName)
            status = try c.decode(String.self, forKey: .status)
            taskDefinition = try c.decode(String.self, forKey: .taskDefinition)
            desiredCount = try c.decodeIfPresent(Int.self, forKey: .desiredCount) ?? 0
            runningCount = try c.decodeIfPresent(Int.self, forKey: .runningCount) ?? 0
            deployments = try c.decodeIfPresent([Deployment].self, forKey: .deployments) ?? []
            events = try c.decodeIfPresent([Event].self, forKey: .events) ?? []
        }
    }

    /// One deployment of a service.
    public struct Deployment: Decodable, Sendable, Equatable {
        /// Its id.
        public let id: String
        /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
        public let status: String
        /// The task definition it deploys.
        public let taskDefinition: String
        /// Tasks wanted, running, pending and failed.
        public let desiredCount: Int?
        /// Tasks running.
        public let runningCount: Int?
        /// Tasks that failed to start.
        public let failedTasks: Int?
        /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
        public let rolloutState: String?
        /// Why, when it failed.
        public let rolloutStateReason: String?
    }

    /// A service event.
    public struct Event: Decodable, Sendable, Equatable {
        /// What happened.
        public let message: String
    }

    struct DescribeServicesOutput: Decodable {
        let services: [Service]
        let failures: [Failure]?
    }

    struct Failure: Decodable {
        let arn: String?
        let reason: String?
    }

    struct TaskDefinitionOutput: Decodable {
        let taskDefinition: TaskDefinition
    }

    struct ListOutput: Decodable {
        let taskDefinitionArns: [String]
        let nextToken: String?
    }

    struct ServiceOutput: Decodable {
        let service: Service
    }
}

extension AWSClient {
    /// ECS RegisterTaskDefinition with a rendered template (the `--cli-input-json` shape) as it is.
    public func registerTaskDefinition(_ request: Data) async throws(AWSError) -> ECS.TaskDefinition {
        try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "RegisterTaskDefinition", body: Array(request),
            as: ECS.TaskDefinitionOutput.self
        ).taskDefinition
    }

    /// ECS DescribeTaskDefinition.
    public func describeTaskDefinition(_ arnOrFamily: String) async throws(AWSError) -> ECS.TaskDefinition {
        try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DescribeTaskDefinition", input: ["taskDefinition": arnOrFamily],
            as: ECS.TaskDefinitionOutput.self
        ).taskDefinition
    }

    /// ECS ListTaskDefinitions of one family, newest first, every page.
    public func listTaskDefinitions(family: String, status: String = "ACTIVE") async throws(AWSError) -> [String] {
        var arns: [String] = []
        var token: String?
        repeat {
            var input = ["familyPrefix": family, "status": status, "sort": "DESC"]
            input["nextToken"] = token
            let page = try await json(.ecs, targetPrefix: ECS.targetPrefix, operation: "ListTaskDefinitions", input: input, as: ECS.ListOutput.self)
            arns += page.taskDefinitionArns
            token = page.nextToken
        } while token != nil
        // Newest first, whatever order the pages came in.
        let revision = { (arn: String) in Int(arn.split(separator: ":").last ?? "") ?? 0 }
        return arns.sorted { revision($0) > revision($1) }
    }

    /// ECS DescribeServices of one service; a service ECS does not know is an error naming it.
    public func describeService(cluster: String, service: String) async throws(AWSError) -> ECS.Service {
        struct Input: Encodable { let cluster: String; let services: [String] }
        let output = try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DescribeServices", input: Input(cluster: cluster, services: [service]),
            as: ECS.DescribeServicesOutput.self)
        guard let found = output.services.first else {
            let reason = output.failures?.first?.reason ?? "MISSING"
            throw AWSError(
                service: "ecs", operation: "DescribeServices", code: "ServiceNotFound",
                message: "no service \(service) in cluster \(cluster) (\(reason))", requestID: nil, status: 200)
        }
        return found
    }

    /// ECS UpdateService: point the service at `taskDefinition`.
    public func updateService(cluster: String, service: String, taskDefinition: String) async throws(AWSError) -> ECS.Service {
        try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "UpdateService",
            input: ["cluster": cluster, "service": service, "taskDefinition": taskDefinition], as: ECS.ServiceOutput.self
        ).service
    }
}

extension AWSClient {
    /// Why the service's most recently stopped tasks stopped (ListTasks STOPPED, then DescribeTasks), newest first,
    /// at most `limit`: what a failed rollout's message should show.
    public func stoppedTaskReasons(cluster: String, service: String, limit: Int = 3) async throws(AWSError) -> [String] {
        struct List: Encodable { let cluster: String; let serviceName: String; let desiredStatus = "STOPPED"; let maxResults: Int }
        struct Listed: Decodable { let taskArns: [String] }
        struct Describe: Encodable { let cluster: String; let tasks: [String] }
        struct Described: Decodable {
            struct Task: Decodable {
                let taskArn: String
                let stoppedReason: String?
                let stoppedAt: Double?
                let containers: [Container]?
                struct Container: Decodable { let name: String?; let reason: String?; let exitCode: Int? }
            }
            let tasks: [Task]
        }
        let listed = try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "ListTasks", input: List(cluster: cluster, serviceName: service, maxResults: 10),
            as: Listed.self)
        guard !listed.taskArns.isEmpty else { return [] }
        let described = try await json(
            .ecs, targetPrefix: ECS.targetPrefix, operation: "DescribeTasks", input: Describe(cluster: cluster, tasks: listed.taskArns),
            as: Described.self)
        return described.tasks.sorted { ($0.stoppedAt ?? 0) > ($1.stoppedAt ?? 0) }.prefix(limit).map { task in
            let id = task.taskArn.split(separator: "/").last.map(String.init) ?? task.taskArn
            let containers = (task.containers ?? []).compactMap { container -> String? in
                guard container.reason != nil || container.exitCode != nil else { return nil }
                return "\(container.name ?? "container"): \(container.reason ?? "exit \(container.exitCode!)")"
            }
            return "task \(id): \(task.stoppedReason ?? "stopped")" + (containers.isEmpty ? "" : " (\(containers.joined(separator: "; ")))")
        }
    }
}
