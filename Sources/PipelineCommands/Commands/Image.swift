import ArgumentParser
import AWS
import Foundation
import OCI
import Runner
import Stages

extension PipelineCommand {
    /// `pipeline image ...`: images outside a run.
    struct ImageGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "image", abstract: "Work with container images outside a run.", subcommands: [ImagePushCommand.self])
    }

    /// `pipeline image push PATH REPOSITORY[:TAG]`.
    struct ImagePushCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Push one image (an OCI layout folder or a docker-archive tar) to a repository, with the code a run's push stage uses.",
            discussion: """
                The registry is --registry, else $PIPELINE_REGISTRY (with ECR's credentials), else the ECR registry of the \
                repository (credentials from GetAuthorizationToken). $PIPELINE_REGISTRY_USERNAME and \
                $PIPELINE_REGISTRY_PASSWORD give other credentials. Plain HTTP is refused except on loopback unless \
                --insecure. Prints the pushed digest on stdout; progress goes to stderr. Exit codes: 0 pushed, 1 the \
                push failed, 2 bad input (unreadable image, tag on another digest).
                """)

        @Argument(help: ArgumentHelp("An OCI image layout folder, or a docker-archive (docker save) or OCI-archive tar.", valueName: "image"))
        var path: String

        @Argument(help: ArgumentHelp("The repository, with an optional tag.", valueName: "repository[:tag]"))
        var destination: String

        @Option(help: ArgumentHelp("Which image of a layout or archive holding several (its ref name or tag).", valueName: "name"))
        var ref: String?

        @Option(help: ArgumentHelp("The registry's URL (https://HOST[:PORT]).", valueName: "url"))
        var registry: String?

        @Flag(help: "Allow plain HTTP to a registry that is not on this machine.")
        var insecure = false

        @Flag(help: "Move a tag that already points at another digest.")
        var force = false

        @Option(help: "Uploads at once.")
        var connections = 4

        @Option(help: ArgumentHelp("Blobs larger than this many MiB go in chunks of this size (ECR: at least 5).", valueName: "MiB"))
        var chunkSize = 64

        func validate() throws {
            guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
            guard chunkSize >= 1 else { throw ValidationError("--chunk-size must be at least 1 MiB") }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let (repository, tag) = Self.split(destination)
            let image: LocalImage
            do {
                image = try LocalImage.read(URL(filePath: path), reference: ref)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.badInput
            }
            do {
                let aws = registry == nil ? AWSClient(configuration: try AWSConfiguration.resolve(environment: environment)) : nil
                let target = try await RegistryTarget.resolve(
                    repository: repository, aws: aws, environment: environment, registry: registry, allowInsecure: insecure)
                var options = ImagePush.Options()
                options.force = force
                options.connections = connections
                options.chunkSize = UInt64(chunkSize) << 20
                FileHandle.standardError.write(
                    Data("pushing \(image.origin) (\(image.blobs.count) blobs, \(image.blobBytes) bytes) to \(target.client.host)/\(repository)\n".utf8))
                let report = try await ImagePush(client: target.client, options: options).push(image, tags: tag.map { [$0] } ?? []) { line in
                    FileHandle.standardError.write(Data("  \(line)\n".utf8))
                }
                FileHandle.standardError.write(Data("pushed \(report)\n".utf8))
                print(report.digest)
            } catch let error as ImageError where error.description.contains("tags are immutable") {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw Exit.badInput
            } catch {
                let masker = SecretMasker()
                masker.add(SecretResolver.maskedValues([:], environment: environment))
                FileHandle.standardError.write(Data("error: \(masker.mask("\(error)"))\n".utf8))
                throw Exit.stageFailed
            }
        }

        /// `repo:tag` → (repo, tag); a colon in a registry port stays (`host:5000/repo`).
        static func split(_ destination: String) -> (String, String?) {
            guard let colon = destination.lastIndex(of: ":"), !destination[colon...].contains("/") else { return (destination, nil) }
            return (String(destination[..<colon]), String(destination[destination.index(after: colon)...]))
        }
    }
}
