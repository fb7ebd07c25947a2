import Foundation
import Logging
import PipelineDSL
import Runner
import Stages

/// Loads the workspace's pipeline and turns it into a checked plan: what every command starts from.
struct PlanLoading {
    let workspace: Workspace
    let logger: Logger

    init(_ options: GlobalOptions) throws(LoadError) {
        workspace = try options.workspace()
        logger = options.makeLogger()
    }

    func manifest() throws(LoadError) -> Manifest {
        let environment = ProcessInfo.processInfo.environment
        let library = try DSLLibrary.locate(environment: environment, executable: DSLLibrary.currentExecutable)
        guard let swiftc = PipelineLoader.locateCompiler(environment: environment) else {
            throw LoadError(.environment, "no swiftc on PATH; install Swift 6 or set PIPELINE_SWIFTC")
        }
        try workspace.prepareHome()
        let loader = PipelineLoader(
            pipelinesDirectory: workspace.pipelinesDirectory, cacheDirectory: workspace.programCache, library: library,
            swiftc: swiftc, logger: logger)
        return try loader.load()
    }

    /// The checked plan of `environment`.
    func plan(for environment: String) throws(LoadError) -> Plan {
        let manifest = try manifest()
        guard let plan = manifest.plan(for: environment) else {
            let known = manifest.environments.map(\.name).joined(separator: ", ")
            throw LoadError(.definition, "unknown environment '\(environment)'; the pipeline defines: \(known)")
        }
        let directory = workspace.pipelinesDirectory
        let validator = PlanValidator(checks: [
            { TaskDefinitionChecks.problems(in: $0, pipelinesDirectory: directory) }
        ])
        let problems = validator.problems(in: plan)
        guard problems.isEmpty else { throw LoadError(.definition, problems) }
        return plan
    }
}
