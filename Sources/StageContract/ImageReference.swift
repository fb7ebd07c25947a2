/// What an image reference (`REPOSITORY@sha256:...` or `REPOSITORY:TAG`) says of itself.
public enum ImageReference {
    /// The digest a reference names (`sha256:...` after the `@`), if it names one.
    public static func digest(of image: String) -> String? {
        image.range(of: "@").map { String(image[$0.upperBound...]) }
    }

    /// The commit a reference is tagged with (`REPOSITORY:<40 lower-case hex>`), if it is.
    public static func commit(inTag image: String) -> String? {
        guard !image.contains("@"), let colon = image.lastIndex(of: ":") else { return nil }
        let tag = String(image[image.index(after: colon)...])
        return tag.isCommitID ? tag : nil
    }
}
