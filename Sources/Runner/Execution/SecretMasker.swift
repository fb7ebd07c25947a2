import CSpawn
import Foundation
import Synchronization

/// Replaces every known secret, in every form it can take, by `***`.
///
/// `mask(_:)` works on whole strings; a `MaskingStream` works on output that arrives in chunks, holding back
/// only the bytes that could be the start of a secret.
public final class SecretMasker: Sendable {
    /// What a secret is replaced by.
    public static let replacement: [UInt8] = Array("***".utf8)

    /// The forms known, longest first.
    private let patterns = Mutex<[[UInt8]]>([])

    /// A masker that knows no secret yet.
    public init() {}

    /// Adds secret values; from now on they are masked everywhere this masker is used.
    public func add(_ secrets: [String]) {
        let forms = secrets.flatMap(SecretForms.of)
        patterns.withLock { patterns in
            for form in forms where !patterns.contains(form) { patterns.append(form) }
            patterns.sort { $0.count > $1.count }
        }
    }

    /// The forms known now, longest first.
    var currentPatterns: [[UInt8]] { patterns.withLock { $0 } }

    /// `text` with every secret masked.
    public func mask(_ text: String) -> String {
        let patterns = currentPatterns
        guard !patterns.isEmpty else { return text }
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        let consumed = Self.replace(bytes[...], patterns: patterns, into: &out, final: true)
        precondition(consumed == bytes.count)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `input` to `out` with every complete match replaced. Unless `final`, stops before the longest
    /// suffix that could still grow into a match, and returns how many bytes of `input` it used.
    static func replace(_ input: ArraySlice<UInt8>, patterns: [[UInt8]], into out: inout [UInt8], final: Bool) -> Int {
        guard !patterns.isEmpty else {
            out.append(contentsOf: input)
            return input.count
        }
        return input.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            let count = raw.count
            var position = 0
            while position < count {
                // The earliest match of any pattern; the longest one at that place (patterns are longest first).
                var best: (offset: Int, length: Int)?
                for pattern in patterns {
                    let limit = best.map { $0.offset + pattern.count } ?? count
                    let window = min(count, limit) - position
                    guard window >= pattern.count else { continue }
                    let found = pattern.withUnsafeBytes { needle in
                        pipeline_memmem(base + position, window, needle.baseAddress!, needle.count)
                    }
                    if let found {
                        let offset = base.distance(to: UnsafeRawPointer(found))
                        if best == nil || offset < best!.offset { best = (offset, pattern.count) }
                    }
                }
                guard let match = best else { break }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[position..<match.offset]))
                out.append(contentsOf: replacement)
                position = match.offset + match.length
            }
            var end = count
            if !final {
                end = count - heldBack(UnsafeRawBufferPointer(rebasing: raw[position..<count]), patterns: patterns)
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[position..<end]))
            return end
        }
    }

    /// The length of the longest suffix of `tail` that is a proper prefix of some pattern.
    private static func heldBack(_ tail: UnsafeRawBufferPointer, patterns: [[UInt8]]) -> Int {
        var longest = 0
        for pattern in patterns {
            var length = min(pattern.count - 1, tail.count)
            while length > longest {
                if memcmp(tail.baseAddress! + (tail.count - length), pattern, length) == 0 {
                    longest = length
                    break
                }
                length -= 1
            }
        }
        return longest
    }
}

/// Masks output that arrives in pieces.
public struct MaskingStream {
    private let masker: SecretMasker
    private var pending: [UInt8] = []

    /// A stream that masks with `masker`'s secrets.
    public init(masker: SecretMasker) {
        self.masker = masker
    }

    /// Masks `chunk` and appends what is certainly free of secrets to `out`.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let patterns = masker.currentPatterns
        if pending.isEmpty && patterns.isEmpty {
            out.append(contentsOf: chunk)
            return
        }
        pending.append(contentsOf: chunk)
        let used = SecretMasker.replace(pending[...], patterns: patterns, into: &out, final: false)
        pending.removeFirst(used)
    }

    /// Masks and appends whatever is still held back.
    public mutating func finish(into out: inout [UInt8]) {
        _ = SecretMasker.replace(pending[...], patterns: masker.currentPatterns, into: &out, final: true)
        pending.removeAll()
    }
}
