import Foundation
import Synchronization

/// The outputs file of a stage (`PIPELINE_OUTPUTS`), kept whole as values are added; a value over several lines
/// is written in the `KEY<<DELIMITER` form the runner reads (the form shell stages write too).
public final class StageOutputFile: Sendable {
    private let path: String?
    private let values = Mutex<[(String, String)]>([])

    /// The file at `path`; nil keeps the values in memory only (a stage run by hand, outside a run).
    public init(path: String?) { self.path = path }

    /// Adds or replaces `new` and writes the file whole.
    public func set(_ new: KeyValuePairs<String, String>) throws {
        try set(Array(new.map { ($0.key, $0.value) }))
    }

    /// Adds or replaces the values of `output` and writes the file whole.
    public func set<Output: StageOutput>(_ output: Output) throws {
        try set(try FlatValues.encode(output))
    }

    private func set(_ new: [(String, String)]) throws {
        let text = values.withLock { values in
            for (key, value) in new {
                if let index = values.firstIndex(where: { $0.0 == key }) { values[index].1 = value } else { values.append((key, value)) }
            }
            return values.map { key, value in
                value.contains("\n") ? "\(key)<<PIPELINE_OUTPUT_END\n\(value)\nPIPELINE_OUTPUT_END\n" : "\(key)=\(value)\n"
            }.joined()
        }
        guard let path else { return }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw StageContextError("cannot write the stage's outputs to \(path) (\(StageVariables.outputs)): \(describeFileError(error))")
        }
    }
}
