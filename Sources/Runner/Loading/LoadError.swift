/// Why a pipeline could not be loaded.
public struct LoadError: Error, CustomStringConvertible, Sendable {
    /// Whose fault it is, which decides the exit code.
    public enum Kind: Sendable {
        /// The pipeline definition or the user's input is wrong: fix it and try again (exit code 2).
        case definition
        /// Something around the pipeline is missing or broken: the toolchain, the DSL library, the cache.
        case environment
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

    /// The messages, one per line.
    public var description: String { messages.joined(separator: "\n") }
}
