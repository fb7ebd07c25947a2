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
            return "contains \(Set(bad).map(describe).sorted().joined(separator: ", "))"
        }
        return nil
    }

    /// A name as error messages quote it: characters outside printable ASCII as `U+XXXX`, so that an invisible or
    /// look-alike character is seen.
    public static func shown(_ name: String) -> String {
        String(name.prefix(120).unicodeScalars.flatMap { (0x21...0x7e).contains($0.value) || $0 == " " ? String($0) : codePoint($0) })
            + (name.count > 120 ? "…" : "")
    }

    private static func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar == " " { return "space" }
        return (0x21...0x7e).contains(scalar.value) ? "'\(scalar)'" : codePoint(scalar)
    }

    private static func codePoint(_ scalar: Unicode.Scalar) -> String {
        "U+" + String(String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4))
    }

    /// Why `name` is not a name ECS takes for a service; nil when it is.
    public static func ecsServiceProblem(with name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > 255 { return "is longer than 255 characters" }
        let bad = name.unicodeScalars.filter { !(isAlphanumeric($0) || "-_".unicodeScalars.contains($0)) }
        return bad.isEmpty ? nil : "contains \(Set(bad).map(describe).sorted().joined(separator: ", ")) (ECS takes letters, digits, '-' and '_')"
    }

    /// Why `name` cannot be a variable a stage sets (`.env`, `.secret`); nil when it can.
    public static func variableProblem(with name: String) -> String? {
        guard let first = name.unicodeScalars.first, first == "_" || isLetter(first),
            name.unicodeScalars.allSatisfy({ $0 == "_" || isAlphanumeric($0) })
        else { return "is not a variable name (letters, digits and '_', not starting with a digit)" }
        if StageVariables.isReserved(name) {
            return "is one the runner sets for every stage (\(name.hasPrefix(StageVariables.outputPrefix) ? "an earlier stage's output" : "the run, the stage or its files")); choose another name"
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
                found.append("stage '\(shown(stage.id))': the id \(problem); ids may use only \(allowed)")
            }
            for name in stage.environment.keys.sorted() {
                if let problem = variableProblem(with: name) { found.append("stage '\(shown(stage.id))': the variable '\(shown(name))' \(problem)") }
            }
            for name in stage.secrets.map(\.name) {
                if let problem = variableProblem(with: name) { found.append("stage '\(shown(stage.id))': the secret '\(shown(name))' \(problem)") }
            }
        }
        for service in plan.services {
            if let problem = problem(with: service.name) {
                found.append("service '\(shown(service.name))': the name \(problem); names may use only \(allowed)")
            }
        }
        var deployedBy: [String: [String]] = [:]  // "cluster/ECS service" → plan services
        for stage in plan.stages {
            guard case .updateService(let spec) = stage.spec else { continue }
            if let problem = ecsServiceProblem(with: spec.ecsService) {
                found.append("stage '\(shown(stage.id))': the ECS service name '\(shown(spec.ecsService))' \(problem); change the environment's service-name pattern or the service's name")
            }
            deployedBy["\(spec.cluster)/\(spec.ecsService)", default: []].append(spec.service)
        }
        for (target, services) in deployedBy.sorted(by: { $0.key < $1.key }) where Set(services).count > 1 {
            found.append(
                "services \(Set(services).sorted().map { "'\(shown($0))'" }.joined(separator: " and ")) are all deployed to the ECS service \(target); give each its own (the environment's service-name pattern should contain {service})")
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

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar))
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
