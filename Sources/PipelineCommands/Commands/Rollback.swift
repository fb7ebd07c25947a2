import ArgumentParser
import AWS
import Foundation
import PipelineDSL
import Runner
import StageContract
import Stages

extension PipelineCommand {
    /// `pipeline rollback SERVICE [--env ENV] [--to SHA|previous] [--dry-run] [--yes]`.
    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a service back on what an earlier commit deployed.",
            discussion: """
                --to SHA (full or short) finds what that commit deployed: from the deployment records, or, when they \
                lack it, from the service's task-definition revisions whose image is tagged with that SHA. --to \
                previous (the default) is the last deployment before the one running now. Before changing anything it \
                checks that the image is still in the registry and the revision still ACTIVE (an INACTIVE one is \
                registered again from its stored definition), prints what will change, and asks for confirmation on a \
                terminal unless --yes. The rollback is itself a run, with logs and artifacts, recorded as a deployment.
                Exit codes: 0 rolled back (or nothing to do), 1 the rollback failed, 2 refused (nothing changed), 3 the \
                environment is busy with another run.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The service, as the pipeline names it.")
        var service: String

        @Option(name: .customLong("env"), help: ArgumentHelp("The environment (needed when the service was deployed to several).", valueName: "env"))
        var environmentName: String?

        @Option(help: ArgumentHelp("A commit SHA (full or short), or previous.", valueName: "sha|previous"))
        var to: String = "previous"

        @Flag(help: "Print what would change, change nothing.")
        var dryRun = false

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        @OptionGroup var execution: ExecutionOptions

        func validate() throws {
            if to != "previous" && (to.count < 4 || !to.allSatisfy(\.isHexDigit)) {
                throw ValidationError("--to takes a commit SHA (at least 4 hex digits) or previous; got '\(to)'")
            }
        }

        func run() throws {
            do {
                try execute()
            } catch let refusal as RollbackRefusal {
                FileHandle.standardError.write(Data("error: \(refusal.message)\n".utf8))
                throw refusal.busy ? Exit.busy : Exit.badInput
            } catch let error as AWSError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.stageFailed
            } catch let error as StageError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.badInput
            } catch {
                throw error.reported()
            }
        }

        private func execute() throws {
            let loading = try PlanLoading(global)
            let workspace = loading.workspace
            try workspace.prepareHome()
            let store = try StateAccess.open(workspace)
            try loading.requireKnown(service: service, environment: self.environmentName, recorded: false)
            let environmentName = try self.environmentName ?? Self.onlyEnvironment(of: service, store: store)
            let plan = try loading.plan(for: environmentName)
            guard let update = plan.stages.lazy.compactMap({ stage -> UpdateServiceSpec? in
                if case .updateService(let spec) = stage.spec, spec.service == service { return spec }
                return nil
            }).first else {
                let known = Set(plan.stages.compactMap(\.service)).sorted().joined(separator: ", ")
                throw RollbackRefusal("environment \(environmentName) deploys no service \(service) (it deploys: \(known))")
            }
            let health = plan.stages.lazy.compactMap { stage -> HealthCheckSpec? in
                if case .healthCheck(let spec) = stage.spec, spec.service == service { return spec }
                return nil
            }.first
            guard let repository = plan.service(named: service)?.repository else { throw RollbackRefusal("the pipeline has no service \(service)") }
            if let owner = try store.liveLockOwner(environment: environmentName) {
                throw RollbackRefusal(
                    "environment \(environmentName) is busy: run \(owner.id) (\(owner.status.rawValue), started by \(owner.user), pid \(owner.pid ?? 0)) holds it; wait for it to end",
                    busy: true)
            }
            let environment = ProcessInfo.processInfo.environment
            let client = AWSClient(configuration: try StageAWS.configuration(for: plan.environment, environment: environment))
            let records = try store.deployments(service: service, environment: environmentName)
            let current = try blocking { () async throws(AWSError) -> ECS.Service in
                try await client.describeService(cluster: update.cluster, service: update.ecsService)
            }
            let target = try Self.target(to, records: records, current: current.taskDefinition, client: client)
            guard target.taskDefinitionArn != current.taskDefinition else {
                print("\(service) in \(environmentName) already runs \(Self.revision(current.taskDefinition)) (\(Self.short(target.sha))); nothing to do")
                return
            }
            // Checks before any change: the image is still there, the revision is usable.
            let definition = try blocking { () async throws(AWSError) -> ECS.TaskDefinition in
                try await client.describeTaskDefinition(target.taskDefinitionArn)
            }
            let image = target.image ?? definition.images.first ?? ""
            do {
                try blocking { () async throws -> Void in
                    try await ImagePresence.require(image, repository: repository, aws: client, environment: environment)
                }
            } catch {
                throw RollbackRefusal("cannot roll back to \(Self.short(target.sha)): \(error)")
            }
            var note = ""
            if definition.status == "INACTIVE" {
                guard target.taskDefinition != nil else {
                    throw RollbackRefusal("\(target.taskDefinitionArn) is INACTIVE and no stored definition of it is recorded, so it cannot be registered again")
                }
                note = " (INACTIVE: its stored definition is registered again)"
            }
            let from = records.first { $0.taskDefinitionArn == current.taskDefinition }
            print("rollback \(service) in \(environmentName) (\(update.ecsService) in \(update.cluster))")
            print("  from  \(Self.short(from?.sha ?? "")) \(Self.revision(current.taskDefinition))\(from.map { "  deployed \(Dates.format($0.createdAt)) by run \($0.run.map(String.init) ?? "-")" } ?? "")")
            print("  to    \(Self.short(target.sha)) \(Self.revision(target.taskDefinitionArn))\(note)\(target.deployed.map { "  deployed \(Dates.format($0.createdAt)) by run \($0.run.map(String.init) ?? "-")" } ?? "")")
            print("  image \(image)")
            if dryRun {
                print("dry run: nothing changed")
                return
            }
            if !yes {
                guard isatty(STDIN_FILENO) == 1 else {
                    throw RollbackRefusal("not on a terminal, so no one can confirm: add --yes to roll back")
                }
                print("Roll back? [y/N] ", terminator: "")
                fflush(nil)
                guard let answer = readLine()?.lowercased(), ["y", "yes"].contains(answer) else {
                    print("not rolled back")
                    return
                }
            }
            let stage = PipelineDSL.Stage(
                id: "\(service).rollback", service: service,
                spec: .rollback(
                    RollbackSpec(
                        service: service, update: update, taskDefinitionArn: target.taskDefinitionArn, taskDefinition: target.taskDefinition,
                        sha: target.sha, image: image, healthCheck: health)))
            let rollbackPlan = PipelineDSL.Plan(
                pipeline: plan.pipeline, source: plan.source, parallelism: 1, environment: plan.environment, services: plan.services,
                notifications: plan.notifications, stages: [stage])
            let console = NotifyingConsole(
                execution.makeConsole(), plan: rollbackPlan, store: store, environment: environment,
                lookup: SecretsManagerLookup(plan.environment, environment: environment))
            let session = RunSession(store: store, console: console)
            fflush(nil)  // what was printed so far comes before the run's own output
            let request = RunSession.Request(
                environment: environmentName, sha: target.sha.isEmpty ? nil : target.sha, ref: nil, branch: nil, trigger: "rollback",
                user: StateAccess.currentUser, noWait: true, stageEnvironment: [:])
            let (_, outcome) = try session.execute(
                plan: rollbackPlan, request: request, options: RunOptions(parallelism: 1, killGrace: execution.killGrace),
                executable: execution.executable, secrets: ["(notifications)": console.secretsByName], environment: environment)
            try ExecutionOptions.finish(outcome)
        }

        struct Target {
            let sha: String
            let taskDefinitionArn: String
            let taskDefinition: String?
            let image: String?
            let deployed: DeploymentRecord?
        }

        /// What `to` names: a recorded deployment, or a revision whose image carries the SHA as its tag.
        static func target(_ to: String, records: [DeploymentRecord], current: String, client: AWSClient) throws -> Target {
            let usable = records.filter { $0.taskDefinitionArn != nil }
            if to == "previous" {
                guard let record = usable.first(where: { $0.taskDefinitionArn != current }) else {
                    throw RollbackRefusal("there is no earlier deployment to go back to (\(records.count) recorded, none on another task definition than \(revision(current)))")
                }
                return Target(sha: record.sha, taskDefinitionArn: record.taskDefinitionArn!, taskDefinition: record.taskDefinition, image: record.image, deployed: record)
            }
            let prefix = to.lowercased()
            let shas = Set(usable.map(\.sha).filter { $0.hasPrefix(prefix) })
            if shas.count > 1 {
                throw RollbackRefusal("\(to) is ambiguous: it starts \(shas.sorted().map { String($0.prefix(12)) }.joined(separator: ", ")); give more of the SHA")
            }
            if let sha = shas.first, let record = usable.first(where: { $0.sha == sha }) {
                return Target(sha: sha, taskDefinitionArn: record.taskDefinitionArn!, taskDefinition: record.taskDefinition, image: record.image, deployed: record)
            }
            // Not in the records: look through the family's ACTIVE revisions for an image tagged with the SHA.
            let family = String(current.split(separator: "/").last?.split(separator: ":").first ?? "")
            let arns = try blocking { () async throws(AWSError) -> [String] in try await client.listTaskDefinitions(family: family) }
            var found: [(sha: String, arn: String, image: String)] = []
            for arn in arns.prefix(100) {
                let definition = try blocking { () async throws(AWSError) -> ECS.TaskDefinition in try await client.describeTaskDefinition(arn) }
                for image in definition.images {
                    guard let colon = image.lastIndex(of: ":"), !image.contains("@") else { continue }
                    let tag = image[image.index(after: colon)...].lowercased()
                    if tag.count == 40, tag.hasPrefix(prefix) { found.append((tag, arn, image)) }
                }
            }
            let distinct = Set(found.map(\.sha))
            if distinct.count > 1 {
                throw RollbackRefusal("\(to) is ambiguous among the revisions of \(family): \(distinct.sorted().map { String($0.prefix(12)) }.joined(separator: ", "))")
            }
            guard let match = found.first else {
                throw RollbackRefusal("\(to) was never deployed for this service: no deployment record and no ACTIVE revision of \(family) has an image tagged with it")
            }
            return Target(sha: match.sha, taskDefinitionArn: match.arn, taskDefinition: nil, image: match.image, deployed: nil)
        }

        /// The one environment `service` was deployed to, or a refusal asking for --env.
        static func onlyEnvironment(of service: String, store: StateStore) throws -> String {
            let environments = Set(try store.deployments(service: service, environment: nil).map(\.environment)).sorted()
            guard environments.count == 1 else {
                throw RollbackRefusal(
                    environments.isEmpty
                        ? "no deployments of \(service) are recorded here; name the environment with --env"
                        : "\(service) was deployed to \(environments.joined(separator: " and ")); name one with --env")
            }
            return environments[0]
        }

        static func short(_ sha: String) -> String { sha.isEmpty ? "(unknown commit)" : String(sha.prefix(12)) }
        static func revision(_ arn: String) -> String { String(arn.split(separator: "/").last ?? Substring(arn)) }
    }

    /// `pipeline deployments SERVICE [--env ENV]`.
    struct Deployments: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a service's deployments and rollbacks, newest first.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The service, as the pipeline names it.")
        var service: String

        @Option(name: .customLong("env"), help: ArgumentHelp("Only this environment.", valueName: "env"))
        var environmentName: String?

        @Option(help: "How many.")
        var limit: Int = 50

        func run() throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                let records = try store.deployments(service: service, environment: environmentName, limit: limit)
                let recorded = try !store.deployments(service: service, environment: nil, limit: 1).isEmpty
                try PlanLoading(global).requireKnown(service: service, environment: environmentName, recorded: recorded)
                guard !records.isEmpty else {
                    print("no deployments of \(service)\(environmentName.map { " in \($0)" } ?? "") recorded")
                    return
                }
                var table = TextTable(headers: ["WHEN", "ENV", "KIND", "SHA", "DIGEST", "REVISION", "RUN", "TRIGGER", "APPROVED BY"])
                for record in records {
                    table.add([
                        Dates.format(record.createdAt), record.environment, record.kind.rawValue, Rollback.short(record.sha),
                        record.digest.map { String($0.prefix(19)) } ?? "-", record.taskDefinitionArn.map(Rollback.revision) ?? "-",
                        record.run.map(String.init) ?? "-", record.trigger ?? "-", record.approvedBy ?? "-",
                    ])
                }
                print(table.render(), terminator: "")
            } catch {
                throw error.reported()
            }
        }
    }
}

/// A rollback that is refused before anything changed.
struct RollbackRefusal: Error {
    let message: String
    /// Refused because another run holds the environment (exit 3), not because of what was asked (exit 2).
    let busy: Bool
    init(_ message: String, busy: Bool = false) {
        self.message = message
        self.busy = busy
    }
}
