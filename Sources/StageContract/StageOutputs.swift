import Foundation

/// The key/value outputs a stage writes to the file named by `PIPELINE_OUTPUTS`: `KEY=VALUE` lines, or
/// `KEY<<DELIMITER` ... `DELIMITER` for values over several lines (as GitHub Actions' output files).
public enum StageOutputs {
    /// Parses an outputs file's text.
    public static func parse(_ text: String) -> [String: String] {
        var outputs: [String: String] = [:]
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        while let line = lines.next() {
            if let marker = line.range(of: "<<"), !line[..<marker.lowerBound].contains("=") {
                let key = String(line[..<marker.lowerBound])
                let delimiter = line[marker.upperBound...]
                var value: [Substring] = []
                while let next = lines.next(), next != delimiter { value.append(next) }
                outputs[key] = value.joined(separator: "\n")
            } else if let equals = line.firstIndex(of: "=") {
                outputs[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        return outputs
    }

    /// `PIPELINE_OUTPUT_<STAGE>_<KEY>`, upper-cased, with every character other than a letter or digit as `_`.
    public static func variableName(stage: String, key: String) -> String {
        let raw = "PIPELINE_OUTPUT_\(stage)_\(key)".uppercased()
        return String(raw.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }
}
