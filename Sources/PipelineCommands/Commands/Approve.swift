import ArgumentParser
import Foundation
import PipelineDSL
import Runner
import Server
import StageContract

extension PipelineCommand {
    /// `pipeline approve ENV [--run RUN] [--comment TEXT] [--detach]`.
    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve",
            abstract: "Approve the run waiting at an environment's approval gate; with enough approvals it continues.",
            discussion: """
                The run continues in this process (or, with --detach, in the background, logging to its run folder). \
                Approving twice counts once. Refused, changing nothing: a person not among the gate's approvers, the \
                person who started the run (unless the gate allows it), a run that expired, was rejected or was \
                cancelled. Exit codes: as `pipeline run` once the run continues; 0 when the approval was counted and \
                more are needed; 2 refused.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The environment.")
        var environment: String

        @Option(name: .customLong("run"), help: ArgumentHelp("The waiting run (default: the environment's waiting run).", valueName: "run"))
        var runID: Int?

        @Option(help: "A comment kept with the approval.")
        var comment: String?

        @Flag(help: "Continue the run in the background.")
        var detach = false

        @Flag(help: "Approve through the server you logged in to (`pipeline login`), as your verified user.")
        var server = false

        @OptionGroup var execution: ExecutionOptions

        func run() async throws {
            if server {
                return try await ServerDecision.send(.approve, environment: environment, run: runID, fields: comment.map { ["comment": $0] } ?? [:])
            }
            do {
                let workspace = try global.workspace()
                let store = try StateAccess.open(workspace)
                let gate = try WaitingGate.find(environment, run: runID, store: store)
                if gate.plan.environment.verifiedApprovals == true {
                    throw ApprovalRefusal(
                        description: "\(environment) requires verified approvals: approve through the server instead (`pipeline login URL --user NAME`, then `pipeline approve \(environment) --server`), or on the run's approval page")
                }
                let identity = try gate.identity(environment: ProcessInfo.processInfo.environment, operatingSystemUser: StateAccess.currentUser)
                if let refusal = gate.refusal(of: identity, to: .approve) { throw refusal }
                let comment = try await self.comment.asyncMap { try await Gates.masked($0, plan: gate.plan) }
                let result = try store.approve(
                    run: gate.run.id, stage: gate.stage, user: identity, comment: comment, required: gate.spec.required,
                    continuingAs: detach ? nil : .current)
                try store.audit(actor: identity, identity: .local, action: "approved", target: "run \(gate.run.id)", detail: comment)
                switch result {
                case .recorded(let count, let required):
                    print("approved by \(identity): \(count) of \(required) approvals for run \(gate.run.id); waiting for \(required - count) more")
                case .alreadyApproved(let count, let required):
                    print("\(identity) had approved run \(gate.run.id) already; it counts once (\(count) of \(required))")
                case .releasedToWaitingProcess(let approvers):
                    print("run \(gate.run.id) approved by \(approvers.joined(separator: ", ")); it continues in the process that waits for it (pid \(gate.run.pid ?? 0))")
                case .released(let approvers, let lease):
                    print("run \(gate.run.id) approved by \(approvers.joined(separator: ", ")); continuing from \(gate.stage)")
                    fflush(nil)
                    guard let record = try store.run(gate.run.id) else { return }
                    if let lease {
                        let outcome = try await RunStart(store: store, execution: execution, environment: ProcessInfo.processInfo.environment)
                            .continuing(record, lease: lease, workspace: workspace, trigger: "approve")
                        try ExecutionOptions.finish(outcome)
                    } else {
                        try Gates.detach(record, store: store)
                    }
                }
            } catch let refusal as ApprovalRefusal {
                FileHandle.standardError.write(Data("error: \(refusal)\n".utf8))
                throw Exit.badInput
            } catch {
                throw error.reported()
            }
        }
    }

    /// `pipeline reject ENV [--run RUN] --reason TEXT`.
    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reject",
            abstract: "Reject the run waiting at an environment's approval gate: it ends failed, changing nothing deployed.",
            discussion: "Only the gate's approvers may reject. Exit codes: 0 rejected, 2 refused.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The environment.")
        var environment: String

        @Option(name: .customLong("run"), help: ArgumentHelp("The waiting run (default: the environment's waiting run).", valueName: "run"))
        var runID: Int?

        @Option(help: "Why (kept with the decision).")
        var reason: String

        @Flag(help: "Reject through the server you logged in to (`pipeline login`), as your verified user.")
        var server = false

        func validate() throws {
            if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason must say why") }
        }

        func run() async throws {
            if server { return try await ServerDecision.send(.reject, environment: environment, run: runID, fields: ["reason": reason]) }
            do {
                let store = try StateAccess.open(try global.workspace())
                let gate: WaitingGate
                do {
                    gate = try WaitingGate.find(environment, run: runID, store: store)
                } catch let damaged as RunFolderDamaged {
                    try Self.rejectDamaged(damaged, store: store, reason: reason)
                    return
                }
                let identity = try gate.identity(environment: ProcessInfo.processInfo.environment, operatingSystemUser: StateAccess.currentUser)
                if let refusal = gate.refusal(of: identity, to: .reject) { throw refusal }
                let reason = try await Gates.masked(self.reason, plan: gate.plan)
                try store.reject(run: gate.run.id, stage: gate.stage, user: identity, reason: reason)
                try store.audit(actor: identity, identity: .local, action: "rejected", target: "run \(gate.run.id)", detail: reason)
                print("run \(gate.run.id) rejected by \(identity): \(reason)")
            } catch let refusal as ApprovalRefusal {
                FileHandle.standardError.write(Data("error: \(refusal)\n".utf8))
                throw Exit.badInput
            } catch {
                throw error.reported()
            }
        }
    }
}

extension PipelineCommand.Reject {
    /// Ends a waiting run whose plan is lost: its gate's approvers cannot be checked, but the run cannot go on
    /// either, and rejecting it changes nothing deployed, so whoever asks may end it (and is recorded).
    static func rejectDamaged(_ damaged: RunFolderDamaged, store: StateStore, reason: String) throws {
        guard let stage = try store.stageRuns(damaged.run).first(where: { $0.status == .waiting })?.stageID else { throw damaged }
        let user = StateAccess.currentUser
        try store.reject(run: damaged.run, stage: stage, user: user, reason: "\(Gates.masked(reason)) (its plan could not be read)")
        print("run \(damaged.run) rejected by \(user): \(reason); its folder is damaged, so the gate's approvers could not be checked (rejecting changes nothing deployed)")
    }
}

/// Continuing an approved run.
enum Gates {
    /// A comment or reason as kept: the runner's own secrets and the plan's masked, as in logs; refused when the
    /// plan's secrets cannot be read to mask it with.
    static func masked(_ text: String, plan: Plan) async throws -> String {
        do {
            return try await DecisionMask.masked(text, plan: plan, environment: ProcessInfo.processInfo.environment)
        } catch let error as DecisionMaskError {
            throw ApprovalRefusal(description: error.description)
        }
    }

    /// A text with the runner's own secrets (its AWS secret key, tokens) masked, where no plan is at hand.
    static func masked(_ text: String) -> String {
        let masker = SecretMasker()
        masker.add(SecretResolver.maskedValues([:], environment: ProcessInfo.processInfo.environment))
        return masker.mask(text)
    }

    /// Continues the run in the background (`pipeline resume RUN` in a session of its own, which takes the approved
    /// run over), logging to the run folder.
    static func detach(_ record: RunRecord, store: StateStore) throws {
        let log = store.runFolder(record.id).appending(path: "resume-\(Int(Date().timeIntervalSince1970)).log")
        try DetachedProcess.start(
            DSLLibrary.currentExecutable?.path ?? CommandLine.arguments[0], ["resume", String(record.id)],
            environment: ProcessInfo.processInfo.environment.merging(["PIPELINE_HOME": store.home.path]) { _, new in new }, log: log)
        print("run \(record.id) continues in the background; follow it with `pipeline logs \(record.id) --follow` or `pipeline status \(record.id)` (output in \(log.path))")
    }
}

/// What people are told about a waiting run.
enum ApprovalText {
    static func waitingNotice(_ run: RunRecord, store: StateStore) throws -> String {
        guard let gate = try WaitingGate.of(run, store: store) else { return "" }
        var text = "\nrun \(run.id) waits for approval at \(gate.stage)\(gate.spec.message.map { ": \($0)" } ?? "")\n"
        text += gateLines(gate)
        text += "  approve:  pipeline approve \(run.environment) --run \(run.id) [--comment TEXT]\n"
        text += "  reject:   pipeline reject \(run.environment) --run \(run.id) --reason TEXT\n"
        text += "  look:     pipeline status \(run.id)   (what the gate lets through)\n"
        return text
    }

    static func gateLines(_ gate: WaitingGate) -> String {
        let others = gate.spec.allowSelfApproval ? "" : gate.requester.map { " (not \($0), who started it)" } ?? ""
        var text = "  needs \(gate.spec.required) of: \(gate.spec.approvers.joined(separator: ", "))\(others)\n"
        text += "  approved by: \(gate.approvers.isEmpty ? "nobody yet" : gate.approvers.joined(separator: ", "))\n"
        if let expiresAt = gate.expiresAt { text += "  expires: \(Dates.format(expiresAt))\n" }
        return text
    }

    /// For each service of the run: what runs now (the latest recorded deployment) and what the run would put out.
    static func releaseLines(_ gate: WaitingGate, store: StateStore) throws -> String {
        let folder = RunFolder(root: store.runFolder(gate.run.id))
        var table = TextTable(headers: ["SERVICE", "LIVE SHA", "LIVE DIGEST", "NEW SHA", "NEW DIGEST"])
        for service in Set(gate.plan.stages.compactMap(\.service)).sorted() {
            let live = try store.deployments(service: service, environment: gate.run.environment, limit: 1).first
            let push = gate.plan.stages.first { $0.kind == .push && $0.service == service }
            let digest = try push.flatMap { try folder.publishedOutputs(of: $0.id)?["digest"] }
            table.add([
                service, live.map { String($0.sha.prefix(12)) } ?? "-", live?.digest.map { String($0.prefix(19)) } ?? "-",
                gate.run.sha.map { String($0.prefix(12)) } ?? "-", digest.map { String($0.prefix(19)) } ?? "-",
            ])
        }
        return table.render()
    }
}

/// An approval or rejection sent to the server with the kept login: the server checks the gate's rules against the
/// verified user and records it (and continues the run once approved).
enum ServerDecision {
    static func send(_ decision: WaitingGate.Decision, environment: String, run: Int?, fields: [String: String]) async throws {
        try await ServerCallError.reporting {
            let client = ServerClient(login: try ServerLogin.load())
            let id = try await client.waitingRun(environment, run: run)
            let answer = try await client.call("POST", "/runs/\(id)/\(decision == .approve ? "approve" : "reject")", fields) as? [String: Any]
            print("run \(id): \(answer?["outcome"] as? String ?? "done") (on \(client.base))")
        }
    }
}

extension Optional {
    /// The wrapped value transformed by an async function, or nil.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
