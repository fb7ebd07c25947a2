/// One shape of the ECS API model: what a JSON value at that place may be.
enum ECSShape: Sendable {
    case structure(members: [String: String], required: [String])
    case list(String)
    case map(value: String)
    case string(allowed: [String]?)
    case integer
    case number
    case boolean

    /// Every way `value` breaks the shape `name` of `shapes`, each with the JSON path where it happens.
    static func problems(
        in value: JSONValue, shape name: String, shapes: [String: ECSShape], path: String
    ) -> [String] {
        guard let shape = shapes[name] else { return ["\(path): the model has no shape \(name)"] }
        switch (shape, value) {
        case (.structure(let members, let required), .object(let object)):
            var found: [String] = []
            for key in required where object[key] == nil {
                found.append("\(path): missing required field '\(key)'")
            }
            for key in object.keys.sorted() {
                guard let member = members[key] else {
                    found.append("\(path): unknown field '\(key)'\(suggestion(for: key, among: Array(members.keys)))")
                    continue
                }
                found += problems(in: object[key]!, shape: member, shapes: shapes, path: "\(path).\(key)")
            }
            return found
        case (.list(let member), .array(let items)):
            return items.enumerated().flatMap { index, item in
                problems(in: item, shape: member, shapes: shapes, path: "\(path)[\(index)]")
            }
        case (.map(let member), .object(let object)):
            return object.keys.sorted().flatMap { key in
                problems(in: object[key]!, shape: member, shapes: shapes, path: "\(path).\(key)")
            }
        case (.string(let allowed), .string(let text)):
            guard let allowed, !allowed.contains(text) else { return [] }
            return ["\(path): '\(text)' is not one of \(allowed.joined(separator: ", "))"]
        case (.integer, .integer), (.number, .integer), (.number, .number), (.boolean, .bool):
            return []
        default:
            return ["\(path): expected \(shape.expectation), found \(value.typeName)"]
        }
    }

    private var expectation: String {
        switch self {
        case .structure: "an object"
        case .list: "an array"
        case .map: "an object"
        case .string: "a string"
        case .integer: "an integer"
        case .number: "a number"
        case .boolean: "a boolean"
        }
    }

    /// "; did you mean 'containerDefinitions'?" for a key that differs from a known one only in case.
    private static func suggestion(for key: String, among names: [String]) -> String {
        if let match = names.first(where: { $0.lowercased() == key.lowercased() }) {
            return "; did you mean '\(match)'?"
        }
        return ""
    }
}
