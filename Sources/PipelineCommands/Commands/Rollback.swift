import ArgumentParser
import AWS
import Foundation
import PipelineDSL
import Runner
import StageContract
import Stages

extension PipelineCommand {
    /// `pipeline rollback SERVICE [--env ENV] [--to SHA|previous] [--dry-run] [--yes]`.
    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Put a service back on what an earlier commit deployed.",
            discussion: """
                --to SHA (full or short) finds what that commit deployed: from the deployment records, or, when they \
                lack it, from the service's task-definition revisions whose image is tagged with that SHA. --to \
                previous (the default) is the last deployment before the one running now. Before changing anything it \
                checks that the image is still in the registry and the revision still ACTIVE (an INACTIVE one is \
                registered again from ECS's copy of it), prints what will change, and asks for confirmation on a \
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

        @Flag(help: "Roll back on the server you logged in to (`pipeline login`), as your verified user (needs --env and --yes).")
        var server = false

        @OptionGroup var execution: ExecutionOptions

        func validate() throws {
            do {
                _ = try RollbackPlanner.Selector(to)
            } catch {
                throw ValidationError(error.message)
            }
            if server, environmentName == nil || !yes || dryRun {
                throw ValidationError("--server needs --env ENV and --yes (the server's rollback page shows what will change first), and no --dry-run")
            }
        }

        func run() async throws {
            if server {
                return try await ServerCallError.reporting {
                    let client = ServerClient(login: try ServerLogin.load())
                    let run = try await client.call("POST", "/services/\(service)/rollback", ["env": environmentName!, "to": to]) as? [String: Any]
                    let id = run?["id"] as? Int ?? 0
                    print("rollback of \(service) in \(environmentName!) started on \(client.base) as run \(id): \(client.base)/runs/\(id)")
                }
            }
            do {
                try await execute()
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

        private func execute() async throws {
            let loading = try PlanLoading(global)
            let workspace = loading.workspace
            try workspace.prepareHome()
            let store = try StateAccess.open(workspace)
            try loading.requireKnown(service: service, environment: self.environmentName, recorded: false)
            let environmentName = try self.environmentName ?? RollbackPlanner.onlyEnvironment(of: service, store: store)
            let planner = try RollbackPlanner(plan: try loading.plan(for: environmentName), service: service)
            try planner.requireIdle(store: store)
            let update = planner.update
            let environment = ProcessInfo.processInfo.environment
            let client = AWSClient(configuration: try StageAWS.configuration(for: planner.plan.environment, environment: environment))
            let records = try store.deployments(service: service, environment: environmentName)
            let current = try await client.describeService(cluster: update.cluster, service: update.ecsService).taskDefinition
            let target = try await planner.target(try RollbackPlanner.Selector(to), records: records, current: current) { family in
                // The family's ACTIVE revisions, newest 100, with their images.
                var revisions: [RollbackPlanner.Revision] = []
                for arn in try await client.listTaskDefinitions(family: family).prefix(100) {
                    revisions.append(.init(arn: arn, images: try await client.describeTaskDefinition(arn).images))
                }
                return revisions
            }
            guard target.taskDefinitionArn != current else {
                print("\(service) in \(environmentName) already runs \(RollbackPlanner.revision(current)) (\(RollbackPlanner.short(target.sha))); nothing to do")
                return
            }
            // Checks before any change: the image is still there, the revision is usable.
            let definition = try await client.describeTaskDefinition(target.taskDefinitionArn)
            // The recorded image, unless masking changed it (a secret's value was part of it): then ECS's.
            let image = target.image.flatMap { $0.contains("***") ? nil : $0 } ?? definition.images.first ?? ""
            do {
                try await ImagePresence.require(image, repository: planner.repository, aws: client, environment: environment)
            } catch {
                throw RollbackRefusal("cannot roll back to \(RollbackPlanner.short(target.sha)): \(error)")
            }
            let note = try planner.check(target, status: definition.status ?? "")
            let from = records.first { $0.taskDefinitionArn == current }
            print("rollback \(service) in \(environmentName) (\(update.ecsService) in \(update.cluster))")
            print("  from  \(RollbackPlanner.short(from?.sha ?? "")) \(RollbackPlanner.revision(current))\(from.map { "  deployed \(Dates.format($0.createdAt)) by run \($0.run.map(String.init) ?? "-")" } ?? "")")
            print("  to    \(RollbackPlanner.short(target.sha)) \(RollbackPlanner.revision(target.taskDefinitionArn))\(note)\(target.deployed.map { "  deployed \(Dates.format($0.createdAt)) by run \($0.run.map(String.init) ?? "-")" } ?? "")")
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
            let request = RunSession.Request(
                environment: environmentName, sha: target.sha.isEmpty ? nil : target.sha, ref: nil, branch: nil, trigger: "rollback",
                user: StateAccess.currentUser, noWait: true, stageEnvironment: [:])
            // The rollback stage gets none of the pipeline's secrets, but its log masks them (a secret can be part of
            // what AWS answers, as an account id): read as the runs read them; one that cannot be read is said.
            var masked: [String: [String: String]] = [:]
            do {
                let lookup = SecretsManagerLookup(planner.plan.environment, environment: environment)
                for (stage, values) in try await SecretResolver.resolve(planner.plan, environment: environment, secretsManager: lookup.value) {
                    masked["(masked only) \(stage)"] = values
                }
            } catch {
                FileHandle.standardError.write(Data("warning: the rollback's log cannot mask the pipeline's secrets, which could not be read: \(error.messages.joined(separator: "; "))\n".utf8))
            }
            let outcome = try await RunStart(store: store, execution: execution, environment: environment).fresh(
                plan: planner.rollbackPlan(to: target, image: image), request: request, secrets: masked,
                options: RunOptions(parallelism: 1, killGrace: execution.killGrace))
            try ExecutionOptions.finish(outcome)
        }
    }

    /// `pipeline deployments SERVICE [--env ENV]`.
    struct Deployments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deployments", abstract: "Show a service's deployments and rollbacks, newest first.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The service, as the pipeline names it.")
        var service: String

        @Option(name: .customLong("env"), help: ArgumentHelp("Only this environment.", valueName: "env"))
        var environmentName: String?

        @Option(help: "How many.")
        var limit: Int = 50

        func validate() throws {
            if limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        }

        func run() async throws {
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
                        Dates.format(record.createdAt), record.environment, record.shownKind, RollbackPlanner.short(record.sha),
                        record.digest.map { String($0.prefix(19)) } ?? "-", record.taskDefinitionArn.map(RollbackPlanner.revision) ?? "-",
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
