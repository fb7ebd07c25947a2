import AWS
import Foundation
import OCI
import PipelineDSL

/// The push stage: sends the image the build stage exported to the service's ECR repository over the OCI
/// distribution API, tags it with the full commit SHA (and any other tags of the pipeline), and outputs the image
/// by digest for the task definition.
enum PushStage {
    static func run(_ spec: PushImageSpec, plan: Plan, runFolder: URL, environment: [String: String]) async -> Int32 {
        do {
            guard let build = spec.buildStage else { throw StageError("the push of \(spec.service) has no build stage before it to take the image from") }
            let built = BuiltinStages.outputs(of: build, in: runFolder)
            guard let path = built["image"] else { throw StageError("the build stage \(build) left no image output") }
            let sha = environment["PIPELINE_SHA"] ?? ""
            let tags = spec.tags.map { $0.replacingOccurrences(of: "{sha}", with: sha) }
            if let bad = tags.first(where: { $0.isEmpty || $0.contains("{") }) {
                throw StageError("the tag '\(bad)' is not usable (no commit SHA in this run?)")
            }
            let image = try LocalImage.read(URL(filePath: path), reference: built["ref"])
            let aws = try StageAWS.client(for: plan.environment, environment: environment)
            let target = try await RegistryTarget.resolve(repository: spec.repository, aws: aws, environment: environment)
            var options = ImagePush.Options()
            options.force = spec.force
            options.mountFrom = plan.services.map(\.repository).filter { $0 != spec.repository }
            print("pushing \(image.origin) (\(image.blobs.count) blobs, \(image.blobBytes) bytes) to \(target.client.host)/\(spec.repository)")
            let report = try await ImagePush(client: target.client, options: options).push(image, tags: tags) { print($0) }
            let reference = "\(target.repositoryURI)@\(report.digest)"
            print("pushed \(report)")
            print("image \(reference)")
            try StageOutputFile(environment: environment).set([
                "image": reference, "digest": report.digest.description, "tags": tags.joined(separator: ","),
                "registry": target.client.host,
            ])
            return 0
        } catch {
            FileHandle.standardError.write(Data("error: pushing the image of \(spec.service): \(error)\n".utf8))
            return 1
        }
    }
}
