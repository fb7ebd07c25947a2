import ArgumentParser
import AWS
import Foundation
import HTTP
import Runner
import Stages

extension PipelineCommand {
    /// `pipeline aws ...`: diagnosis of the AWS side.
    struct AWSGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "aws", abstract: "Diagnose the AWS side: credentials, region, endpoints.",
            subcommands: [WhoAmI.self])
    }

    /// `pipeline aws whoami`.
    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami",
            abstract: "Print the identity the AWS credentials resolve to, the region, and each service's endpoint.",
            discussion: """
                With --env, resolves as that environment's stages do: in its region, acting as the role it names.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("env"), help: ArgumentHelp("Resolve as the stages of this environment do.", valueName: "env"))
        var environmentName: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            do {
                let configuration: AWSConfiguration
                if let environmentName {
                    let plan = try PlanLoading(global).plan(for: environmentName)
                    configuration = try StageAWS.configuration(for: plan.environment, environment: environment)
                } else {
                    configuration = try AWSConfiguration.resolve(environment: environment)
                }
                let client = AWSClient(configuration: configuration)
                let identity = try await client.callerIdentity()
                let credentials = try await configuration.credentials.credentials()
                print("account      \(identity.account)")
                print("identity     \(identity.arn)")
                print("credentials  \(credentials.accessKeyID) from \(configuration.credentialSource)")
                if let expiration = credentials.expiration {
                    print("expires      \(expiration.formatted(.iso8601))")
                }
                print("region       \(configuration.region) (profile \(configuration.profile))")
                for service in AWSService.allCases {
                    print("endpoint     \(service.signingName.padding(toLength: 20, withPad: " ", startingAt: 0)) \(URLText.redacted(configuration.endpoint(service).description))")
                }
            } catch let error as LoadError {
                throw error.report()
            } catch {
                let masker = SecretMasker()
                masker.add(SecretResolver.maskedValues([:], environment: environment))
                FileHandle.standardError.write(Data("error: \(masker.mask("\(error)"))\n".utf8))
                throw Exit.badInput
            }
        }
    }
}
