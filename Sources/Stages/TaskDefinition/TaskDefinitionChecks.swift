import Foundation
import PipelineDSL

/// Checks every register stage's template before a plan runs.
public enum TaskDefinitionChecks {
    /// Problems with the templates of `plan`'s register stages, each naming its stage; templates are read from
    /// `pipelinesDirectory`.
    public static func problems(in plan: Plan, pipelinesDirectory: URL) -> [String] {
        var templates: [String: Result<TaskDefinitionTemplate, TemplateError>] = [:]
        var found: [String] = []
        for stage in plan.stages {
            guard case .registerTaskDefinition(let spec) = stage.spec, let service = plan.service(named: spec.service)
            else { continue }
            let loaded =
                templates[spec.template]
                ?? Result { () throws(TemplateError) in
                    try TaskDefinitionTemplate(
                        contentsOf: pipelinesDirectory.appending(path: spec.template), path: spec.template)
                }
            templates[spec.template] = loaded
            switch loaded {
            case .success(let template):
                found += template.problems(environment: plan.environment, service: service)
                    .map { "stage '\(stage.id)': \($0)" }
            case .failure(let error):
                found.append("stage '\(stage.id)': \(error.message)")
            }
        }
        return found
    }
}
