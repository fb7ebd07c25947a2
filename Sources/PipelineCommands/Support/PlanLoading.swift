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

    /// Refuses (exit 2) a service or environment the pipeline does not define, naming those it does; a name
    /// the pipeline defines, or one the records know when the pipeline cannot be loaded, passes.
    func requireKnown(service: String? = nil, environment: String? = nil, recorded: Bool) throws(LoadError) {
        let manifest: Manifest
        do {
            manifest = try self.manifest()
        } catch {
            if recorded { return }
            throw error
        }
        if let service, !manifest.services.contains(where: { $0.name == service }) {
            throw LoadError(.definition, "unknown service '\(service)'; the pipeline defines: \(manifest.services.map(\.name).joined(separator: ", "))")
        }
        if let environment, !manifest.environments.contains(where: { $0.name == environment }) {
            throw LoadError(.definition, "unknown environment '\(environment)'; the pipeline defines: \(manifest.environments.map(\.name).joined(separator: ", "))")
        }
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
