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
            let movingAll = try (spec.movingTags ?? []).map { try context.fill($0, field: "the tag") }
            // Where the plan deploys the service, its moving tags follow the deploy (see MovingTags), not the push.
            let deferred = !movingAll.isEmpty && MovingTags.followDeploy(of: spec.service, in: context.plan)
            if deferred { print("\(movingAll.joined(separator: ", ")) will move to this image once \(spec.service) is deployed and verified") }
            let moving = deferred ? [] : movingAll
            let tags = fixed + moving.filter { !fixed.contains($0) }
            // {user} and {env} are known only now: the filled tags are checked again.
            for tag in tags { if let problem = ImageTags.problem(with: tag) { throw StageError("the tag '\(NameRules.shown(tag))' \(problem)") } }
            for (template, tag) in zip(spec.movingTags ?? [], movingAll) {
                if let problem = ImageTags.movingProblem(with: template, filled: tag) { throw StageError("the moving tag '\(NameRules.shown(tag))' \(problem)") }
            }
            let aws = try context.awsClient()
            let target = try await RegistryTarget.resolve(repository: spec.repository, aws: aws, environment: context.processEnvironment)
            var options = ImagePush.Options()
            options.force = spec.force
            options.moving = Set(moving)
            options.mountFrom = context.plan.services.map(\.repository).filter { $0 != spec.repository }
            let push = ImagePush(client: target.client, options: options)
            let report: ImagePush.Report
            if let reused = built.reused {
                // The build stage found the image of this build key in the registry: only tags are sent.
                guard let manifest = try await target.client.manifest(reused) else {
                    throw StageError("\(spec.repository) no longer has the reused image \(reused) (removed since the build stage found it); run again with --rebuild")
                }
                report = try await push.tag(manifest, tags: tags) { print($0) }
                print("pushed nothing: the image \(report.digest) is in \(target.client.host)/\(spec.repository) already (build key \(built.key?.prefix(12) ?? "-"))")
            } else {
                let image = try LocalImage.read(URL(filePath: built.image), reference: built.ref)
                if built.forced != true, let key = built.key, let theirs = try await target.client.manifest(BuildKey.tag(of: key)),
                    theirs.digest != image.root.digest
                {
                    // Another run pushed an image of the same content after this build looked: one key, one image.
                    report = try await push.tag(theirs, tags: tags) { print($0) }
                    print("pushed nothing: the registry has an image of this build key that another run pushed after this build looked (\(theirs.digest)); it is used, and this build's \(image.root.digest) is not sent")
                } else {
                    print("pushing \(image.origin) (\(image.blobs.count) blobs, \(image.blobBytes) bytes) to \(target.client.host)/\(spec.repository)")
                    report = try await push.push(image, tags: tags) { print($0) }
                    print("pushed \(report)")
                    if let key = built.key { try await tagKey(key, image: image.root, client: target.client, move: built.forced == true) }
                }
            }
            let reference = "\(target.repositoryURI)@\(report.digest)"
            print("image \(reference)")
            try context.outputs.set(
                PushOutput(image: reference, digest: report.digest.description, tags: tags.joined(separator: ","), registry: target.client.host))
            return 0
        } catch {
            StageContext.fail("pushing the image of \(spec.service): \(error)")
            // A tag taken by another image stays taken: retrying the push cannot help.
            return (error as? ImageError)?.permanent == true ? StageExit.permanentFailure : 1
        }
    }

    /// Tags the pushed image with its build key, last, so that only an image wholly in the registry is ever found
    /// by key. A key tag already naming another image (a build that is not reproducible, or two runs at once) is
    /// left as it is, and said.
    static func tagKey(_ key: String, image root: ImageManifest, client: RegistryClient, move: Bool) async throws {
        let tag = BuildKey.tag(of: key)
        if let existing = try await client.manifestDigest(tag), existing != root.digest, move {
            // A forced build replaces the key's image (a cached image that was wrong, or made by another builder).
            try await client.putManifest(root, as: tag)
            print("moved \(client.repository):\(tag) from \(existing) to \(root.digest) (a forced build replaces the key's image)")
            return
        }
        if let existing = try await client.manifestDigest(tag) {
            if existing != root.digest {
                print("warning: \(client.repository):\(tag) already names \(existing), another build of the same content; it stays (this build made \(root.digest): the Dockerfile's steps are not reproducible)")
            }
            return
        }
        try await client.putManifest(root, as: tag)
        print("tagged \(client.repository):\(tag) (the build key)")
    }
}
