import Foundation
import PipelineDSL
import StageContract

/// What the runner does with a stage's files when it ends: secrets masked, outputs published.
extension RunFolder {
    /// Masks every secret in the outputs file the stage wrote, whether or not it succeeded. When the masked copy
    /// cannot be written, the file is removed (a secret is never left behind) and the error thrown.
    func maskOutputs(of stage: String, with masker: SecretMasker) throws {
        try mask(outputsFile(stage), with: masker)
    }

    /// Masks a file another stage (a shell command) left in claims/: not a claim, it is never read, but it is kept
    /// masked like every file of the run.
    func maskStrayClaim(of stage: String, with masker: SecretMasker) throws {
        try mask(claimFile(stage), with: masker)
    }

    private func mask(_ file: URL, with masker: SecretMasker) throws {
        // No file: the stage wrote none.
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

    /// Publishes the outputs of a stage that succeeded, before its outputs file is masked: masked as
    /// `outputs/STAGE.json` for people, and, for a built-in stage (whose outputs are what AWS and the registry
    /// answered), as written in `handoff/STAGE.json` for the stages after it (see `handoffFile`).
    /// Returns the keys it dropped: a key that holds a secret's value is not published (it would be shown, and
    /// become part of a variable's name, in clear).
    @discardableResult
    func publishOutputs(of stage: Stage, masker: SecretMasker) throws -> [String] {
        // No outputs file: the stage wrote none.
        guard let data = FileManager.default.contents(atPath: outputsFile(stage.id).path) else { return [] }
        var values = StageOutputs.parse(String(decoding: data, as: UTF8.self))
        let dropped = values.keys.filter { masker.mask($0) != $0 }.sorted()
        for key in dropped { values[key] = nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        if stage.kind != .shell {
            let file = handoffFile(stage.id)
            // Owner-only, as the run folder (made so by `create`; a folder from an older run is made so here).
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try encoder.encode(values).write(to: file, options: .atomic)
        }
        try encoder.encode(values.mapValues(masker.mask)).write(to: publishedOutputsFile(stage.id), options: .atomic)
        return dropped.map(masker.mask)
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
        // Only adds the reason to a failure message, which is complete without it.
        guard let handle = try? FileHandle(forReadingFrom: log(stage)) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        let tail = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        // An `error:` line first: with --verbose, diagnostics follow it on stderr.
        let errors = tail.split(separator: "\n").filter { $0.dropFirst(25).hasPrefix("err ") }
        let line = errors.last { $0.dropFirst(29).hasPrefix("error:") } ?? errors.last
        return line.map { String($0.dropFirst(29)).trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(300)) }
    }

}

extension RunFolder {
    /// Checks the deployment claim a built-in stage left (`DeploymentClaim.check`) and keeps it with the secrets in
    /// its text masked — decoded first, so that no escaping hides one: the image reference and the rendered task
    /// definition. Its identifiers (ARNs, digests, the commit) are checked for their shape and kept as AWS gave
    /// them. A claim that is refused is removed and the reason thrown as a `ClaimRefusal`; a masked claim that
    /// cannot be written is removed and the error thrown.
    func settleClaim(of stage: Stage, runSHA: String?, masker: SecretMasker) throws {
        let claim: DeploymentClaim
        do {
            guard let read = try DeploymentClaim.read(stage: stage.id, in: self) else { return }
            try read.check(service: stage.service ?? "", runSHA: runSHA)
            claim = read
        } catch {
            try FileManager.default.removeItem(at: claimFile(stage.id))
            throw ClaimRefusal(reason: masker.mask("\(error)"))
        }
        var masked = claim
        masked.image = claim.image.map(masker.mask)
        masked.taskDefinition = claim.taskDefinition.map(masker.mask)
        guard masked != claim else { return }
        do {
            try masked.write(stage: stage.id, in: self)
        } catch {
            try? FileManager.default.removeItem(at: claimFile(stage.id))  // the error thrown below is the one that matters
            throw error
        }
    }
}

/// A deployment claim the runner will not record: the stage that made it fails, saying why.
struct ClaimRefusal: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
