import AWS
import Foundation
import PipelineDSL
import Stages

/// What ECS says each service runs, per environment, asked at most every `--ecs-check-interval` seconds (15 by default: the
/// environments page is read often; ECS's answer changes only with deploys): the environments page compares it with the deployment records
/// and shows drift when ECS runs a task definition `pipeline` did not deploy.
actor LiveCheck {
    struct Answer: Sendable {
        /// The task definition ECS runs, by pipeline service.
        var running: [String: String]
        /// Why some or all could not be asked, in one line.
        var problem: String?
    }

    private let environment: [String: String]
    private var cache: [String: (at: Date, answer: Answer)] = [:]
    private let maxAge: TimeInterval

    init(environment: [String: String], maxAge: TimeInterval) {
        self.environment = environment
        self.maxAge = maxAge
    }

    func running(in target: EnvironmentSpec, services: [(name: String, cluster: String, ecsService: String)]) async -> Answer {
        if let cached = cache[target.name], Date().timeIntervalSince(cached.at) < maxAge { return cached.answer }
        let answer: Answer
        do {
            let client = AWSClient(configuration: try StageAWS.configuration(for: target, environment: environment))
            var running: [String: String] = [:]
            var problems: [String] = []
            await withTaskGroup(of: (String, Result<String, any Error>).self) { group in
                for service in services {
                    group.addTask {
                        do {
                            return (service.name, .success(try await client.describeService(cluster: service.cluster, service: service.ecsService).taskDefinition))
                        } catch {
                            return (service.name, .failure(error))
                        }
                    }
                }
                for await (name, result) in group {
                    switch result {
                    case .success(let arn): running[name] = arn
                    case .failure(let error): problems.append("\(name): \(error)")
                    }
                }
            }
            answer = Answer(running: running, problem: problems.isEmpty ? nil : problems.sorted().joined(separator: "; "))
        } catch {
            answer = Answer(running: [:], problem: "\(error)")
        }
        cache[target.name] = (Date(), answer)
        return answer
    }
}
