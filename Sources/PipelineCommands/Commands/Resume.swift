import ArgumentParser
import Foundation
import PipelineDSL
import Runner
import StageContract

extension PipelineCommand {
    /// `pipeline resume RUN`: continues a run that did not finish.
    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Continue an interrupted, failed or cancelled run from its first stage that did not succeed.",
            discussion: """
                Stages that succeeded are never run again. The run keeps the plan it started with, and what each \
                service ran before the run changed it. A run whose runner is alive (even stopped with SIGSTOP) is \
                refused with exit 3: one runner per run. Also continues an approved run whose runner never came.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The run's number.", valueName: "run"))
        var runID: Int

        @OptionGroup var execution: ExecutionOptions

        func run() async throws {
            do {
                let workspace = try global.workspace()
                let store = try StateAccess.open(workspace)
                try store.reconcile()
                _ = try StateAccess.run(runID, in: store)
                _ = try Self.plan(of: runID, store: store)  // an unreadable plan is refused before the run is taken
                let lease = try store.takeOwnership(of: runID, accepting: [.interrupted, .failed, .cancelled, .approved], why: "resume")
                guard let record = try store.run(runID) else { return }
                let outcome = try await RunStart(store: store, execution: execution, environment: ProcessInfo.processInfo.environment)
                    .continuing(record, lease: lease, workspace: workspace, trigger: "resume")
                try ExecutionOptions.finish(outcome)
            } catch {
                throw error.reported()
            }
        }

        /// The plan run `id` started with; a run folder that lost it is damaged state (exit 74).
        static func plan(of id: Int, store: StateStore) throws(LoadError) -> PipelineDSL.Plan {
            let folder = RunFolder(root: store.runFolder(id))
            do {
                return try folder.readPlan()
            } catch {
                throw LoadError(
                    .unwritable,
                    "cannot read the plan of run \(id) (\(folder.planFile.path)): \(error.localizedDescription); its run folder is damaged, so it cannot be continued")
            }
        }
    }

    /// `pipeline gc --keep N`: prunes old runs.
    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Delete the folders and records of old finished runs, keeping the newest N runs.",
            discussion: "Queued, running and interrupted runs are never deleted.")

        @OptionGroup var global: GlobalOptions

        @Option(help: "How many of the newest runs to keep.")
        var keep: Int

        @Flag(help: "Print what would be deleted, and delete nothing.")
        var dryRun = false

        func validate() throws {
            if keep < 0 { throw ValidationError("--keep must be 0 or more") }
        }

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                try store.reconcile()
                let all = try store.runs(limit: Int.max)
                let old = all.dropFirst(keep).filter { $0.status.isFinal && $0.status != .interrupted }
                guard !old.isEmpty else {
                    print("nothing to delete: \(all.count) runs, keeping \(keep)")
                    return
                }
                var deleted = old.map(\.id)
                if !dryRun {
                    // Records first, in one transaction that checks each run has still ended; then the folders of
                    // exactly those. A run resumed meanwhile keeps both.
                    deleted = try store.deleteRuns(deleted)
                    for id in deleted {
                        do {
                            try FileManager.default.removeItem(at: store.runFolder(id))
                        } catch {
                            FileHandle.standardError.write(Data("warning: could not remove \(store.runFolder(id).path): \(error.localizedDescription)\n".utf8))
                        }
                    }
                }
                let ids = deleted.map(String.init).joined(separator: ", ")
                print("\(dryRun ? "would delete" : "deleted") \(deleted.count) runs: \(ids)")
            } catch {
                throw error.reported()
            }
        }
    }
}
