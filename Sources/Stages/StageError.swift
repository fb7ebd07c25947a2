/// Why a built-in stage cannot go on, in words for the stage log.
struct StageError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
