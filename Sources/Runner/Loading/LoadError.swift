/// Why a pipeline could not be loaded.
public struct LoadError: Error, CustomStringConvertible, Sendable {
    /// Whose fault it is, which decides the exit code.
    public enum Kind: Sendable {
        /// The pipeline definition or the user's input is wrong: fix it and try again (exit code 2).
        case definition
        /// Something around the pipeline is missing or broken: the toolchain, the DSL library, the cache.
        case environment
        /// The state folder or the compile cache could not be written (a full disk, a read-only file system):
        /// nothing was kept half-written (exit code 74).
        case unwritable
    }

    /// Whose fault it is.
    public let kind: Kind
    /// Every problem, each a line a person can act on.
    public let messages: [String]
    /// The messages are another tool's output (the compiler's), to be shown exactly as they are.
    public let verbatim: Bool

    /// An error of `kind` with `messages`.
    public init(_ kind: Kind, _ messages: [String], verbatim: Bool = false) {
        self.kind = kind
        self.messages = messages
        self.verbatim = verbatim
    }

    /// An error of `kind` with one message.
    public init(_ kind: Kind, _ message: String) {
        self.init(kind, [message])
    }

    /// Whether a tool's message says a write failed for lack of room or permission, rather than about its input.
    public static func saysWriteFailed(_ text: String) -> Bool {
        ["No space left on device", "Read-only file system", "Disk quota exceeded", "Input/output error"].contains { text.contains($0) }
    }

    /// The messages, one per line.
    public var description: String { messages.joined(separator: "\n") }
}
