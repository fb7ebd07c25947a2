import ArgumentParser
import Foundation
import Runner
import StageContract

extension PipelineCommand {
    /// `pipeline status [RUN]`: one run in detail.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show a run (the latest when none is named): where it stands and every stage.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The run's number (default: the latest run).", valueName: "run"))
        var runID: Int?

        @Flag(help: "Print the run as JSON (the shape `pipeline serve` answers at /api/v1/runs/RUN).")
        var json = false

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                store.reconcileIfPossible()
                do {
                    try WaitingGate.expireOverdue(store: store)
                } catch {
                    FileHandle.standardError.write(Data("warning: could not end runs whose approval expired: \(error)\n".utf8))
                }
                let record: RunRecord
                if let runID {
                    record = try StateAccess.run(runID, in: store)
                } else if let latest = try store.runs(limit: 1).first {
                    record = latest
                } else {
                    print("no runs yet; start one with `pipeline run ENV`")
                    return
                }
                if json { return print(try JSONOutput.string(try RunView.detailed(record, store: store))) }
                print(try Self.describe(record, store: store), terminator: "")
            } catch {
                throw error.reported()
            }
        }

        static func describe(_ run: RunRecord, store: StateStore) throws -> String {
            var out = "run \(run.id)  \(run.environment)  \(run.shownStatus.rawValue)\n"
            var facts = ["by \(run.user) (\(run.trigger))"]
            if let ref = run.ref { facts.append("ref \(ref)") }
            if let sha = run.sha { facts.append("sha \(sha)") }
            facts.append("asked \(Dates.format(run.createdAt))")
            if let started = run.startedAt {
                facts.append("took \(TextConsole.format((run.finishedAt ?? Date()).timeIntervalSince(started)))")
            }
            out += "  " + facts.joined(separator: " · ") + "\n"
            if let commit = run.commit, let sha = run.sha {
                out += "  commit \(sha) by \(commit.author), \(Dates.format(commit.time)): \(commit.subject)\n"
            }
            if let message = run.message { out += "  \(message)\n" }
            let stages = try store.stageRuns(run.id)
            // Every stage of the plan, in plan order: those that never started too.
            let planned = (try? RunFolder(root: store.runFolder(run.id)).readPlan())?.stages.map(\.id) ?? []  // no plan: the records alone
            let recorded = Dictionary(stages.map { ($0.stageID, $0) }) { first, _ in first }
            let order = planned + stages.map(\.stageID).filter { !planned.contains($0) }
            if !order.isEmpty {
                var table = TextTable(headers: ["STAGE", "STATUS", "ATTEMPTS", "DURATION", "MESSAGE"])
                for id in order {
                    guard let stage = recorded[id] else {
                        table.add([id, StageStatus.pending.rawValue, "0", "-", run.status.isFinal ? "never started" : ""])
                        continue
                    }
                    let duration = stage.startedAt.map { TextConsole.format((stage.finishedAt ?? Date()).timeIntervalSince($0)) } ?? "-"
                    table.add([stage.stageID, stage.status.rawValue, String(stage.attempts), duration, stage.message ?? ""])
                }
                out += "\n" + table.render()
            }
            out += "\nlogs: pipeline logs \(run.id)   folder: \(store.runFolder(run.id).path)\n"
            if run.shownStatus == .interrupted || run.status == .approved { out += "continue it: pipeline resume \(run.id)\n" }
            if run.shownStatus != run.status { out += "its runner is gone (\(OwnerLiveness.whyGone(run))); this could not be recorded yet\n" }
            if run.shownStatus.hasOwner, let owner = run.owner ?? run.pid.map({ RunOwner(host: ProcessIdentity.hostName, pid: Int32($0), started: "") }) {
                out += "runner: \(owner)\(run.leaseExpiresAt.map { ", lease renewed until \(Dates.format($0))" } ?? "")\n"
            }
            let waitingGate: WaitingGate?
            do {
                waitingGate = try WaitingGate.of(run, store: store)
            } catch let damaged as RunFolderDamaged {
                out += "\nerror: \(damaged)\n"
                waitingGate = nil
            }
            if let gate = waitingGate {
                out += "\nwaiting for approval at \(gate.stage)\(gate.spec.message.map { ": \($0)" } ?? "")\n" + ApprovalText.gateLines(gate)
                out += "\nwhat the gate lets through (live now → about to go out):\n" + (try ApprovalText.releaseLines(gate, store: store))
                if let changes = RunFolder(root: store.runFolder(run.id)).gateChanges() {
                    out += "\nwhat it would change (as of when it stopped here; `pipeline diff \(run.environment)\(run.sha.map { " --sha \($0.prefix(12))" } ?? "")` for now):\n"
                    out += changes.map(PipelineCommand.Diff.text).joined()
                } else {
                    out += "\n(what it would change was not worked out: `pipeline diff \(run.environment)\(run.sha.map { " --sha \($0.prefix(12))" } ?? "")` shows it)\n"
                }
                out += "\napprove: pipeline approve \(run.environment) --run \(run.id)   reject: pipeline reject \(run.environment) --run \(run.id) --reason TEXT\n"
            }
            return out
        }
    }

    /// `pipeline history [ENV]`: the latest runs.
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history", abstract: "List the latest runs, newest first.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only this environment's runs.")
        var environment: String?

        @Option(help: "How many runs.")
        var limit: Int = 20

        @Flag(help: "Print the runs as JSON (the shape `pipeline serve` answers at /api/v1/runs).")
        var json = false

        func validate() throws {
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                store.reconcileIfPossible()
                let runs = try store.runs(environment: environment, limit: limit)
                if let environment {
                    try PlanLoading(global).requireKnown(environment: environment, recorded: !runs.isEmpty)
                }
                if json { return print(try JSONOutput.string(runs.map(RunView.init))) }
                guard !runs.isEmpty else {
                    print("no runs yet\(environment.map { " of \($0)" } ?? "")")
                    return
                }
                var table = TextTable(headers: ["RUN", "ENV", "STATUS", "REF", "SHA", "BY", "ASKED", "DURATION", "MESSAGE"])
                for run in runs {
                    let duration = run.startedAt.map { TextConsole.format((run.finishedAt ?? Date()).timeIntervalSince($0)) } ?? "-"
                    table.add([
                        String(run.id), run.environment, run.shownStatus.rawValue, run.ref ?? "-", run.sha.map { String($0.prefix(12)) } ?? "-",
                        "\(run.user) (\(run.trigger))", Dates.format(run.createdAt), duration, run.message ?? "",
                    ])
                }
                print(table.render(), terminator: "")
            } catch {
                throw error.reported()
            }
        }
    }
}

/// Times as the commands print them: local time to the second.
enum Dates {
    static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }
}
