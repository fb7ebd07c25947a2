import PipelineDSL

/// What a stage id or service name may be: it names files in the run folder and shell variables, so it must be a
/// safe identifier, and no two names of a plan may map to the same file or variable.
public enum NameRules {
    /// The rule, in words, for error messages.
    public static let allowed = "letters a-z and A-Z, digits, '.', '-' and '_', starting with a letter or digit, at most 100 characters"

    /// Why `name` is not a safe identifier; nil when it is.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.count > 100 { return "is \(name.count) characters long" }
        guard let first = name.unicodeScalars.first, isAlphanumeric(first) else { return "does not start with a letter or digit" }
        let bad = name.unicodeScalars.filter { !(isAlphanumeric($0) || ".-_".unicodeScalars.contains($0)) }
        if !bad.isEmpty {
            let shown = Set(bad).map { $0 == " " ? "space" : $0.properties.generalCategory == .control ? "control characters" : "'\($0)'" }
            return "contains \(shown.sorted().joined(separator: ", "))"
        }
        return nil
    }

    /// The variable part `PIPELINE_OUTPUT_<STAGE>_...` a stage id maps to.
    public static func variableStem(_ stage: String) -> String {
        String(stage.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    /// Every problem with the names of `plan`'s stages and services, each naming what is wrong and what to do.
    public static func problems(in plan: Plan) -> [String] {
        var found: [String] = []
        for stage in plan.stages where !stage.id.isEmpty {
            if let problem = problem(with: stage.id) {
                found.append("stage '\(stage.id)': the id \(problem); ids may use only \(allowed)")
            }
        }
        for service in plan.services {
            if let problem = problem(with: service.name) {
                found.append("service '\(service.name)': the name \(problem); names may use only \(allowed)")
            }
        }
        let ids = Array(Set(plan.stages.map(\.id))).sorted()
        found += collisions(ids, map: { RunFolder.fileName($0).lowercased() }, what: "stage") {
            "share the files logs/\(RunFolder.fileName($0)).log and outputs/ (case-insensitively)"
        }
        found += collisions(ids, map: variableStem, what: "stage") {
            "both export PIPELINE_OUTPUT_\(variableStem($0))_<KEY>"
        }
        let services = Array(Set(plan.services.map(\.name))).sorted()
        found += collisions(services, map: { RunFolder.fileName($0).lowercased() }, what: "service") {
            "share the file baselines/\(RunFolder.fileName($0)).json (case-insensitively)"
        }
        return found
    }

    private static func collisions(
        _ names: [String], map: (String) -> String, what: String, why: (String) -> String
    ) -> [String] {
        Dictionary(grouping: names, by: map).values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }.map { group in
            "\(what)s \(group.map { "'\($0)'" }.joined(separator: " and ")) \(why(group[0])); rename one of them"
        }
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar))
    }
}
