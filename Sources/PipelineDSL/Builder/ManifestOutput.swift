#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hands the declared pipeline to the runner when the pipeline program exits, the way SwiftPM's
/// `Package` hands over a manifest.
///
/// The runner starts the program with `--pipeline-output PATH`; the document goes to that file, never to
/// stdout, which belongs to the user's own `print`. Run by hand, the program prints the document instead.
public enum ManifestOutput {
    /// The flag that names the output file.
    public static let outputFlag = "--pipeline-output"

    private static let declared = Mutex<[ManifestDocument]>([])

    static func register(_ document: ManifestDocument) {
        let first = declared.withLock { list in
            list.append(document)
            return list.count == 1
        }
        if first { atexit { ManifestOutput.writeAtExit() } }
    }

    /// The document for everything declared so far: one pipeline's, or an error when there were several.
    public static func combinedDocument() -> ManifestDocument {
        let documents = declared.withLock { $0 }
        if documents.count > 1 {
            return ManifestDocument(
                errors: ["\(documents.count) Pipeline(...) declarations were found; declare exactly one"], plan: nil)
        }
        return documents.first ?? ManifestDocument(errors: ["no Pipeline(...) is declared"], plan: nil)
    }

    /// Encodes a document as the runner reads it.
    public static func encode(_ document: ManifestDocument) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(document)
    }

    private static func writeAtExit() {
        let arguments = CommandLine.arguments
        do {
            let data = try encode(combinedDocument())
            if let flag = arguments.firstIndex(of: outputFlag), flag + 1 < arguments.count {
                try data.write(to: URL(filePath: arguments[flag + 1]))
            } else {
                print(String(decoding: data, as: UTF8.self))
            }
        } catch {
            // The runner reports a missing document as an error; say why here, on stderr.
            var message = "pipeline: could not write the pipeline document: \(error)\n"
            message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        }
    }
}
