import Foundation

/// The outputs file of the stage (`PIPELINE_OUTPUTS`), kept whole as values are added; a value over several lines
/// is written in the `KEY<<DELIMITER` form the runner reads.
final class StageOutputFile: @unchecked Sendable {
    private let path: String?
    private var values: [(String, String)] = []

    init(environment: [String: String]) { path = environment["PIPELINE_OUTPUTS"] }

    func set(_ new: KeyValuePairs<String, String>) throws {
        for (key, value) in new {
            if let index = values.firstIndex(where: { $0.0 == key }) { values[index].1 = value } else { values.append((key, value)) }
        }
        guard let path else { return }
        try values.map { key, value in
            value.contains("\n") ? "\(key)<<PIPELINE_OUTPUT_END\n\(value)\nPIPELINE_OUTPUT_END\n" : "\(key)=\(value)\n"
        }.joined().write(toFile: path, atomically: true, encoding: .utf8)
    }
}
