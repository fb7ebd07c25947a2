import AWS
import Foundation
import OCI
import PipelineDSL
import StageContract

/// The push stage: sends the image the build stage exported to the service's ECR repository over the OCI
/// distribution API, tags it with the full commit SHA (and any other tags of the pipeline), and outputs the image
/// by digest for the task definition.
enum PushStage {
    static func run(_ spec: PushImageSpec, _ context: StageContext) async -> Int32 {
        do {
            guard let build = spec.buildStage else { throw StageError("the push of \(spec.service) has no build stage before it to take the image from") }
            let built = try context.output(BuildOutput.self, of: build)
            let fixed = try spec.tags.map { try context.fill($0, field: "the tag") }
            let moving = try (spec.movingTags ?? []).map { try context.fill($0, field: "the tag") }
            let tags = fixed + moving.filter { !fixed.contains($0) }
            // {user} and {env} are known only now: the filled tags are checked again.
            for tag in tags { if let problem = ImageTags.problem(with: tag) { throw StageError("the tag '\(NameRules.shown(tag))' \(problem)") } }
            for (template, tag) in zip(spec.movingTags ?? [], moving) {
                if let problem = ImageTags.movingProblem(with: template, filled: tag) { throw StageError("the moving tag '\(NameRules.shown(tag))' \(problem)") }
            }
            let image = try LocalImage.read(URL(filePath: built.image), reference: built.ref)
            let aws = try context.awsClient()
            let target = try await RegistryTarget.resolve(repository: spec.repository, aws: aws, environment: context.processEnvironment)
            var options = ImagePush.Options()
            options.force = spec.force
            options.moving = Set(moving)
            options.mountFrom = context.plan.services.map(\.repository).filter { $0 != spec.repository }
            print("pushing \(image.origin) (\(image.blobs.count) blobs, \(image.blobBytes) bytes) to \(target.client.host)/\(spec.repository)")
            let report = try await ImagePush(client: target.client, options: options).push(image, tags: tags) { print($0) }
            let reference = "\(target.repositoryURI)@\(report.digest)"
            print("pushed \(report)")
            print("image \(reference)")
            try context.outputs.set(
                PushOutput(image: reference, digest: report.digest.description, tags: tags.joined(separator: ","), registry: target.client.host))
            return 0
        } catch {
            StageContext.fail("pushing the image of \(spec.service): \(error)")
            return 1
        }
    }
}
