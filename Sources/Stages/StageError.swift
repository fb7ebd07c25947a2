/// Why a built-in stage cannot go on, in words for the stage log.
public struct StageError: Error, CustomStringConvertible {
    /// What went wrong and what to do.
    public let description: String

    /// An error saying `description`.
    public init(_ description: String) {
        self.description = description
    }
}
