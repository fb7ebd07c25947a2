import ArgumentParser
import Foundation
import PipelineDSL
import Runner
import StageContract

extension PipelineCommand {
    /// `pipeline logs RUN`: the stage logs of a run.
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "logs",
            abstract: "Print a run's stage logs (each line: time, out/err, text).",
            discussion: "Without --stage, every stage's log in plan order, each under a header.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The run's number.", valueName: "run"))
        var runID: Int

        @Option(help: "Only this stage's log.")
        var stage: String?

        @Flag(name: .shortAndLong, help: "Keep printing as the run writes more, until it ends.")
        var follow = false

        func run() async throws {
            do {
                let store = try StateAccess.open(try global.workspace())
                let record = try StateAccess.run(runID, in: store)
                let folder = RunFolder(root: store.runFolder(record.id))
                let plan = try? folder.readPlan()  // a damaged run's logs are still shown, in the order of their files
                let stages = plan?.stages.map(\.id) ?? []
                if let stage, !stages.contains(stage) {
                    throw LoadError(.definition, "run \(runID) has no stage '\(stage)'; its stages: \(stages.joined(separator: ", "))")
                }
                let chosen = stage.map { [$0] } ?? stages
                var offsets: [String: UInt64] = [:]
                while true {
                    for id in chosen {
                        offsets[id] = printNew(folder.log(id), from: offsets[id], header: chosen.count > 1 ? id : nil)
                    }
                    guard follow, let current = try store.run(record.id), !current.status.isFinal else { break }
                    store.reconcileIfPossible()
                    try await Task.sleep(for: .milliseconds(500))
                }
                // Following ends with the run: say how, so that a runner killed with -9 is not taken for a finish.
                if follow, let ended = try store.run(record.id), ended.status != .succeeded {
                    FileHandle.standardError.write(Data("run \(ended.id) is \(ended.status.rawValue)\(ended.message.map { ": \($0)" } ?? "")\n".utf8))
                }
            } catch {
                throw error.reported()
            }
        }

        /// Prints what `file` holds past `offset`; returns the new offset.
        private func printNew(_ file: URL, from offset: UInt64?, header: String?) -> UInt64? {
            // Not there (yet): a stage that has not started has no log; `--follow` looks again.
            guard let handle = try? FileHandle(forReadingFrom: file) else { return offset }
            defer { try? handle.close() }  // read only
            if offset == nil, let header { FileHandle.standardOutput.write(Data("==> \(header) <==\n".utf8)) }
            var position = offset ?? 0
            do {
                try handle.seek(toOffset: position)
                while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                    FileHandle.standardOutput.write(chunk)
                    position += UInt64(chunk.count)
                }
            } catch {
                FileHandle.standardError.write(Data("warning: cannot read \(file.path) past byte \(position): \(error)\n".utf8))
            }
            return position
        }
    }
}
