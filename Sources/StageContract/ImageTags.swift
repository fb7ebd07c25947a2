import PipelineDSL

/// What an image tag may be (the OCI distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), checked when the plan
/// is made (with sample values for the run-time placeholders) and again once a run has filled them in.
public enum ImageTags {
    /// Why `tag` (filled in) is not a tag a registry takes; nil when it is.
    public static func problem(with tag: String) -> String? {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first else { return "is empty" }
        if bytes.count > 128 { return "is \(bytes.count) characters long (at most 128)" }
        func word(_ byte: UInt8) -> Bool { (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 95 }
        guard word(first) else { return "must start with a letter, a digit or '_'" }
        guard bytes.allSatisfy({ word($0) || $0 == 46 || $0 == 45 }) else {
            return "may contain only letters, digits, '_', '.' and '-'"
        }
        return nil
    }

    /// Why `tag` cannot move from image to image; nil when it can. A moving tag must not look like the immutable
    /// commit tags: a full SHA (or `{sha}`) would be overwritten by every run.
    public static func movingProblem(with template: String, filled: String) -> String? {
        for unique in ["{sha}", "{shortSha}", "{run}"] where template.contains(unique) {
            return "names \(unique), which is different in every run; a moving tag should name the same thing each run (as {env})"
        }
        if filled.isCommitID {
            return "looks like a commit SHA, which is the immutable tag of that commit's image"
        }
        return nil
    }

    /// Every problem with the tags of a push stage, at plan time: each filled with sample run-time values.
    public static func problems(of spec: PushImageSpec, environment: String) -> [String] {
        let sample = RunPlaceholders(environment: environment, sha: String(repeating: "0", count: 40), run: 1, user: "user")
        var found: [String] = []
        for tag in Set(spec.tags).intersection(spec.movingTags ?? []).sorted() {
            found.append("the tag '\(NameRules.shown(tag))' is both fixed and moving; name it in one of tags and movingTags")
        }
        for (template, moving) in spec.tags.map({ ($0, false) }) + (spec.movingTags ?? []).map({ ($0, true) }) {
            let filled = sample.fill(template, fallback: [:])
            if let problem = problem(with: filled) {
                found.append("the tag '\(NameRules.shown(template))' \(problem)")
            } else if moving, let problem = movingProblem(with: template, filled: filled) {
                found.append("the moving tag '\(NameRules.shown(template))' \(problem)")
            }
        }
        return found
    }
}
