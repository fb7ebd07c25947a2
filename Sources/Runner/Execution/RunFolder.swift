import Foundation
import PipelineDSL

/// A run's folder: `plan.json`, `logs/STAGE.log`, `outputs/STAGE.env` (written by the stage) and
/// `outputs/STAGE.json` (read back), `artifacts/STAGE/`, and `workspace/` (the stages' working folder).
public struct RunFolder: Sendable {
    /// The folder.
    public let root: URL

    /// The folder at `root`.
    public init(root: URL) {
        self.root = root
    }

    /// Makes the folders (owner only) and writes the plan the run runs, with a copy of the pipeline files its
    /// stages read (task-definition templates, by their path in the pipelines folder), so that a resumed run
    /// uses the same ones.
    public func create(plan: Plan, pipelineFiles: [String: Data] = [:]) throws {
        let previous = umask(0o077)
        defer { umask(previous) }
        for sub in ["logs", "outputs", "artifacts", "workspace", "pipelines"] {
            try FileManager.default.createDirectory(at: root.appending(path: sub), withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(plan).write(to: planFile)
        for (path, data) in pipelineFiles {
            let file = pipelineFile(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: file)
        }
    }

    /// The run's copy of a pipeline file, by its path in the pipelines folder.
    public func pipelineFile(_ path: String) -> URL { root.appending(path: "pipelines").appending(path: path) }

    /// The plan the run runs.
    public var planFile: URL { root.appending(path: "plan.json") }
    /// The stages' working folder.
    public var workspace: URL { root.appending(path: "workspace") }

    /// Reads the plan back.
    public func readPlan() throws -> Plan {
        try JSONDecoder().decode(Plan.self, from: Data(contentsOf: planFile))
    }

    /// A stage's log.
    public func log(_ stage: String) -> URL { root.appending(path: "logs/\(Self.fileName(stage)).log") }
    /// The file a stage writes its outputs to.
    public func outputsFile(_ stage: String) -> URL { root.appending(path: "outputs/\(Self.fileName(stage)).env") }
    /// The folder a stage keeps its artifacts in.
    public func artifacts(_ stage: String) -> URL { root.appending(path: "artifacts/\(Self.fileName(stage))") }

    /// The outputs `stage` published (it succeeded), if any.
    public func publishedOutputs(of stage: String) -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: root.appending(path: "outputs/\(Self.fileName(stage)).json").path) else {
            return nil
        }
        return try? JSONDecoder().decode([String: String].self, from: data)
    }

    /// The outputs each finished stage produced.
    public func outputs() -> [String: [String: String]] {
        let folder = root.appending(path: "outputs")
        var all: [String: [String: String]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where name.hasSuffix(".json") {
            if let data = FileManager.default.contents(atPath: folder.appending(path: name).path),
                let values = try? JSONDecoder().decode([String: String].self, from: data)
            {
                all[String(name.dropLast(5))] = values
            }
        }
        return all
    }

    /// Masks every secret in the outputs file the stage wrote, whether or not it succeeded. When the masked copy
    /// cannot be written, the file is removed (a secret is never left behind) and the error thrown.
    func maskOutputs(of stage: String, with masker: SecretMasker) throws {
        let file = outputsFile(stage)
        // No outputs file: the stage wrote none.
        guard let data = FileManager.default.contents(atPath: file.path) else { return }
        let text = String(decoding: data, as: UTF8.self)
        let masked = masker.mask(text)
        guard masked != text else { return }
        do {
            try masked.write(to: file, atomically: true, encoding: .utf8)
        } catch {
            try? FileManager.default.removeItem(at: file)  // the error thrown below is the one that matters
            throw error
        }
    }

    /// Reads the (masked) outputs file of a stage that succeeded and keeps it as `outputs/STAGE.json`.
    func collectOutputs(of stage: String, masker: SecretMasker) throws {
        // No outputs file: the stage wrote none.
        guard let data = FileManager.default.contents(atPath: outputsFile(stage).path) else { return }
        let values = StageOutputs.parse(String(decoding: data, as: UTF8.self)).mapValues(masker.mask)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(values).write(to: root.appending(path: "outputs/\(Self.fileName(stage)).json"), options: .atomic)
    }

    /// Masks every secret in the files the stage left in its artifacts folder; a file whose masked copy cannot be
    /// written is removed and the error thrown.
    func maskArtifacts(of stage: String, with masker: SecretMasker) throws {
        let folder = artifacts(stage)
        guard !masker.currentPatterns.isEmpty,
            let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
        else { return }
        for case let file as URL in walker {
            guard (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,  // not a file: nothing to mask
                let data = FileManager.default.contents(atPath: file.path)
            else { continue }
            var out: [UInt8] = []
            _ = SecretMasker.replace(Array(data)[...], patterns: masker.currentPatterns, into: &out, final: true)
            guard out.count != data.count || !out.elementsEqual(data) else { continue }
            do {
                try Data(out).write(to: file, options: .atomic)
            } catch {
                try? FileManager.default.removeItem(at: file)  // the error thrown below is the one that matters
                throw error
            }
        }
    }

    /// The last line the stage wrote to stderr, for the failure message.
    func lastErrorLine(of stage: String) -> String? {
        guard let handle = try? FileHandle(forReadingFrom: log(stage)) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        let tail = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let line = tail.split(separator: "\n").last { $0.dropFirst(25).hasPrefix("err ") }
        return line.map { String($0.dropFirst(29)).trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(300)) }
    }

    /// Stage ids as file names: `/` and other awkward characters become `_`.
    static func fileName(_ stage: String) -> String {
        String(stage.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
    }
}
