import ArgumentParser
import AWS
import Foundation
import Runner

extension PipelineCommand {
    /// `pipeline aws ...`: diagnosis of the AWS side.
    struct AWSGroup: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "aws", abstract: "Diagnose the AWS side: credentials, region, endpoints.",
            subcommands: [WhoAmI.self])
    }

    /// `pipeline aws whoami`.
    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami",
            abstract: "Print the identity the AWS credentials resolve to, the region, and each service's endpoint.")

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            do {
                let configuration = try AWSConfiguration.resolve(environment: environment)
                let identity = try await AWSClient(configuration: configuration).callerIdentity()
                print("account      \(identity.account)")
                print("identity     \(identity.arn)")
                print("credentials  \(configuration.credentials.accessKeyID) from \(configuration.credentialSource)")
                print("region       \(configuration.region) (profile \(configuration.profile))")
                for service in AWSService.allCases {
                    print("endpoint     \(service.signingName.padding(toLength: 20, withPad: " ", startingAt: 0)) \(configuration.endpoint(service))")
                }
            } catch {
                let masker = SecretMasker()
                masker.add(SecretResolver.maskedValues([:], environment: environment))
                FileHandle.standardError.write(Data("error: \(masker.mask("\(error)"))\n".utf8))
                throw Exit.badInput
            }
        }
    }
}
