import Foundation
import PipelineDSL

/// A service's task-definition template: the JSON that `aws ecs register-task-definition --cli-input-json`
/// takes, with `{{name}}` placeholders in its strings.
///
/// Placeholders: `{{image}}` (the pushed image, by digest), `{{sha}}` (the run's commit), `{{sourceSha}}` (the
/// commit that last changed what the service's image is built from: it changes only when the image does, so an
/// unchanged service keeps its revision), `{{env}}`, `{{service}}`,
/// `{{ecsService}}`, `{{repository}}`, `{{region}}`, `{{cluster}}`, `{{account}}`, `{{domain}}` and
/// `{{var.NAME}}` for the environment's variables.
public struct TaskDefinitionTemplate: Sendable {
    /// The template's path as the user wrote it, for messages.
    public let path: String
    /// The parsed template.
    public let body: JSONValue

    /// Reads and parses the template at `url`; `path` is how messages name it.
    public init(contentsOf url: URL, path: String) throws(TemplateError) {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TemplateError("task-definition template \(path) does not exist (looked at \(url.path))")
        }
        do {
            body = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TemplateError("task-definition template \(path) is not valid JSON: \(Self.describe(error))")
        }
    }

    /// The values of every placeholder but `{{image}}` and `{{sha}}`, for one service in one environment.
    public static func values(environment: EnvironmentSpec, service: ServiceSpec) -> [String: String] {
        var values = [
            "env": environment.name, "service": service.name, "ecsService": environment.ecsServiceName(for: service.name),
            "repository": service.repository, "region": environment.region, "cluster": environment.cluster,
        ]
        values["account"] = environment.account
        values["domain"] = environment.dns?.domain
        for (name, value) in environment.variables { values["var.\(name)"] = value }
        return values
    }

    /// The template with every placeholder filled in from `values`.
    public func render(_ values: [String: String]) throws(TemplateError) -> JSONValue {
        var unknown: [String] = []
        let rendered = body.mapStrings { Self.fill($0, values: values, unknown: &unknown) }
        guard unknown.isEmpty else {
            let known = values.keys.sorted().map { "{{\($0)}}" }.joined(separator: ", ")
            throw TemplateError(
                "task-definition template \(path) uses unknown placeholder \(unknown.sorted().map { "{{\($0)}}" }.joined(separator: ", ")); known here: \(known)")
        }
        return rendered
    }

    /// Every reason the template cannot be registered for `service` in `environment`: unknown placeholders,
    /// no container using `{{image}}`, and anything not of the RegisterTaskDefinition request's shape.
    public func problems(environment: EnvironmentSpec, service: ServiceSpec) -> [String] {
        var values = Self.values(environment: environment, service: service)
        values["image"] = "\(service.repository):\(String(repeating: "0", count: 40))"
        values["sha"] = String(repeating: "0", count: 40)
        values["sourceSha"] = String(repeating: "0", count: 40)
        let rendered: JSONValue
        do {
            rendered = try render(values)
        } catch {
            return [error.message]
        }
        var found = ECSShape.problems(
            in: rendered, shape: "RegisterTaskDefinitionRequest", shapes: ECSShape.registerTaskDefinition, path: "$"
        ).map { "task-definition template \(path) is not a RegisterTaskDefinition request: \($0)" }
        if !body.allStrings.contains(where: { $0.contains("{{image}}") }) {
            found.append(
                "task-definition template \(path): no container uses {{image}}, so a deploy would not change the image; set a container's \"image\" to \"{{image}}\"")
        }
        return found
    }

    private static func fill(_ text: String, values: [String: String], unknown: inout [String]) -> String {
        var result = ""
        var rest = text[...]
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            result += rest[..<open.lowerBound]
            let name = String(rest[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespaces)
            if let value = values[name] {
                result += value
            } else {
                if !unknown.contains(name) { unknown.append(name) }
                result += rest[open.lowerBound..<close.upperBound]
            }
            rest = rest[close.upperBound...]
        }
        return result + rest
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        }
        return "\(error)"
    }
}

/// A template that cannot be read or rendered.
public struct TemplateError: Error, CustomStringConvertible {
    /// What is wrong, naming the template.
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
