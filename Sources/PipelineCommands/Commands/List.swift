import ArgumentParser
import Foundation
import PipelineDSL
import Runner

extension PipelineCommand {
    /// `pipeline list`: the environments and services of the pipeline.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the pipeline's environments and services.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print them as JSON.")
        var json = false

        struct Listing: Encodable {
            let pipeline: String
            let environments: [EnvironmentSpec]
            let services: [ServiceSpec]
        }

        func run() async throws {
            let manifest: Manifest
            do {
                manifest = try PlanLoading(global).manifest()
            } catch {
                throw error.report()
            }
            if json {
                print(
                    try JSONOutput.string(
                        Listing(pipeline: manifest.name, environments: manifest.environments, services: manifest.services)))
                return
            }
            var table = TextTable(headers: ["ENVIRONMENT", "BRANCH", "REGION", "CLUSTER", "DOMAIN", "APPROVAL"])
            for env in manifest.environments {
                let gates = (manifest.stages[env.name] ?? []).filter { $0.kind == .approval }.map(\.id)
                table.add([
                    env.name, env.branch, env.region, env.cluster, env.dns?.domain ?? "-",
                    gates.isEmpty ? "-" : gates.joined(separator: ", "),
                ])
            }
            print("Pipeline \(manifest.name)\n")
            print(table.render())
            var services = TextTable(headers: ["SERVICE", "REPOSITORY", "PORT", "PROTOCOL", "HEALTH CHECK"])
            for service in manifest.services {
                services.add([
                    service.name, service.repository, String(service.port), service.protocol.rawValue,
                    PlanText.describe(service.healthCheck),
                ])
            }
            print(services.render())
        }
    }
}
