/// When a stage runs. Environment clauses are settled when the plan is made; branch clauses when a run starts.
public indirect enum Condition: Sendable, Equatable {
    /// True in any of the named environments.
    case environment([String])
    /// True when the commit being deployed was reached through one of the named branches.
    case branch([String])
    /// True when the inner condition is false.
    case not(Condition)
    /// True when every inner condition is true.
    case all([Condition])
    /// True when at least one inner condition is true.
    case any([Condition])

    /// True in any of the named environments.
    public static func environment(_ names: String...) -> Condition { .environment(names) }
    /// True when the commit being deployed was reached through one of the named branches.
    public static func branch(_ names: String...) -> Condition { .branch(names) }

    /// The condition with every environment clause replaced by its value in `environment`:
    /// `.constant(true)`/`.constant(false)` when nothing is left to decide at run time.
    public func settled(environment name: String) -> Settled {
        switch self {
        case .environment(let names): return .constant(names.contains(name))
        case .branch: return .runtime(self)
        case .not(let inner):
            switch inner.settled(environment: name) {
            case .constant(let value): return .constant(!value)
            case .runtime(let rest): return .runtime(.not(rest))
            }
        case .all(let parts):
            var rest: [Condition] = []
            for part in parts {
                switch part.settled(environment: name) {
                case .constant(false): return .constant(false)
                case .constant(true): continue
                case .runtime(let c): rest.append(c)
                }
            }
            return rest.isEmpty ? .constant(true) : .runtime(rest.count == 1 ? rest[0] : .all(rest))
        case .any(let parts):
            var rest: [Condition] = []
            for part in parts {
                switch part.settled(environment: name) {
                case .constant(true): return .constant(true)
                case .constant(false): continue
                case .runtime(let c): rest.append(c)
                }
            }
            return rest.isEmpty ? .constant(false) : .runtime(rest.count == 1 ? rest[0] : .any(rest))
        }
    }

    /// Evaluates a condition that has no environment clauses left, given the branch being deployed
    /// (`nil` when the run names a bare SHA that no branch was asked for).
    public func holds(branch: String?) -> Bool {
        switch self {
        case .environment: return false
        case .branch(let names): return branch.map(names.contains) ?? false
        case .not(let inner): return !inner.holds(branch: branch)
        case .all(let parts): return parts.allSatisfy { $0.holds(branch: branch) }
        case .any(let parts): return parts.contains { $0.holds(branch: branch) }
        }
    }

    /// A condition after its environment clauses were settled.
    public enum Settled: Equatable, Sendable {
        /// Known now.
        case constant(Bool)
        /// Left for run time.
        case runtime(Condition)
    }
}

extension Condition: CustomStringConvertible {
    /// The condition as a person reads it: `branch in [main] and not environment in [prod]`.
    public var description: String {
        switch self {
        case .environment(let names): return "environment in [\(names.joined(separator: ", "))]"
        case .branch(let names): return "branch in [\(names.joined(separator: ", "))]"
        case .not(let inner): return "not (\(inner))"
        case .all(let parts): return parts.map { "(\($0))" }.joined(separator: " and ")
        case .any(let parts): return parts.map { "(\($0))" }.joined(separator: " or ")
        }
    }
}

extension Condition: Codable {
    private enum CodingKeys: String, CodingKey {
        case environment, branch, not, all, any
    }

    /// Decodes one of `{"environment": [...]}`, `{"branch": [...]}`, `{"not": {...}}`, `{"all": [...]}`,
    /// `{"any": [...]}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let names = try c.decodeIfPresent([String].self, forKey: .environment) {
            self = .environment(names)
        } else if let names = try c.decodeIfPresent([String].self, forKey: .branch) {
            self = .branch(names)
        } else if let inner = try c.decodeIfPresent(Condition.self, forKey: .not) {
            self = .not(inner)
        } else if let parts = try c.decodeIfPresent([Condition].self, forKey: .all) {
            self = .all(parts)
        } else if let parts = try c.decodeIfPresent([Condition].self, forKey: .any) {
            self = .any(parts)
        } else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath, debugDescription: "a condition needs one of environment, branch, not, all, any"))
        }
    }

    /// Encodes the condition as a one-key object.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .environment(let names): try c.encode(names, forKey: .environment)
        case .branch(let names): try c.encode(names, forKey: .branch)
        case .not(let inner): try c.encode(inner, forKey: .not)
        case .all(let parts): try c.encode(parts, forKey: .all)
        case .any(let parts): try c.encode(parts, forKey: .any)
        }
    }
}
