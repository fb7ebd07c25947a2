import Foundation
import PipelineDSL
import StageContract

/// The build stage: works out the service's build key (see `BuildKey`) and, when the registry already has the
/// image of that key, builds nothing and hands that image on. Otherwise runs the builder (docker, podman or buildah)
/// on the service's context in the checked-out commit, reusing cached layers, stamps the image with the time of the
/// commit that last changed what it is built from, tags it with the commit SHA, and exports it into the stage's
/// artifacts (an OCI image layout from buildah, an archive from docker and podman) for the push stage, which tags
/// the key once the image is in the registry.
enum BuildStage {
    static let builders = ["docker", "podman", "buildah"]

    static func run(_ spec: BuildImageSpec, _ context: StageContext) async -> Int32 {
        do {
            let key = try BuildKey.of(spec, context: context)
            if let key {
                print("build key \(key.value.prefix(12)): \(spec.build.context) as of \(key.since.sha.prefix(7)) (\(key.since.subject)), with its Dockerfile, arguments, target and builder")
            }
            if let source = context.plan.environment.verifiedIn {
                return try await promote(spec, key: key, from: source, context)
            }
            let (builder, executable) = try pick(spec.build.builder, environment: context.processEnvironment)
            var forced = context.rebuild || spec.alwaysBuild
            if let key {
                if forced {
                    print("building whatever the registry has: \(context.rebuild ? "the run was started with --rebuild" : "the stage says alwaysBuild")")
                } else if let found = await registeredOrSaid(key, of: spec.service, context, repair: &forced) {
                    print("\(spec.service) unchanged since \(key.since.sha.prefix(7)): image \(found.digest) reused (\(key.tag)); nothing built")
                    try context.outputs.set(
                        BuildOutput(image: found.image, ref: nil, builder: nil, key: key.value, reused: found.digest, since: key.since.sha))
                    return 0
                }
            }
            let timestamp = key.map { Int($0.since.time.timeIntervalSince1970) } ?? context.commitTime
            let cache = await RemoteLayerCache.prepare(spec, builder: builder, context)
            defer { cache?.remove() }
            let result = try build(spec, context, builder: builder, executable: executable, timestamp: timestamp, key: key?.value, cache: cache)
            print("built \(spec.service) as \(result.name) with \(result.builder); image at \(result.path)")
            var output = BuildOutput(image: result.path, ref: result.reference, builder: result.builder, key: key?.value, since: key?.since.sha)
            output.forced = forced ? true : nil
            try context.outputs.set(output)
            return 0
        } catch {
            StageContext.fail("building the image of \(spec.service): \(error)")
            return 1
        }
    }

    /// In an environment that deploys only what `source` verified: takes the image of the key, which must be the
    /// one `source` verified (when the run was told it), and builds nothing, ever.
    static func promote(_ spec: BuildImageSpec, key: BuildKey?, from source: String, _ context: StageContext) async throws -> Int32 {
        let environment = context.plan.environment.name
        guard let key else {
            throw StageError("\(environment) deploys only images \(source) verified, found by build key, and this run has no commit to key by")
        }
        let found: (image: String, digest: String)
        if let verified = context.verifiedImages[spec.service] {
            // Exactly the image `source` verified for this key, by digest: whatever the key's tag names now (a later
            // forced build that failed its checks may have moved it) does not change what is deployed.
            guard let image = try await registered(verified, of: spec.service, context) else {
                throw StageError("the registry no longer has \(verified), the image of build key \(key.value.prefix(12)) that \(source) verified; nothing is deployed: build and verify this commit in \(source) again")
            }
            found = image
            if let tagged = try? await registered(key.tag, of: spec.service, context), tagged.digest != verified {  // only a note
                print("note: the key's tag \(key.tag) names \(tagged.digest) now (a later build); \(verified), which \(source) verified, is what goes out")
            }
        } else {
            guard let image = try await registered(key.tag, of: spec.service, context) else {
                throw StageError("\(environment) deploys only images \(source) verified and builds none; the registry has no image of build key \(key.value.prefix(12)) (\(key.tag)): deploy this commit to \(source) first")
            }
            found = image
        }
        print("\(spec.service): image \(found.digest), verified in \(source), promoted as it is; nothing built")
        try context.outputs.set(BuildOutput(image: found.image, ref: nil, builder: nil, key: key.value, reused: found.digest, since: key.since.sha))
        return 0
    }

    /// `registered`, checked to be of `key` (its label), or nil having said why the registry could not be asked
    /// or why its image is not taken (then the image is built: a build is never wrong, only slower). A key tag
    /// naming an image of another key sets `repair`: the build's push moves the tag back.
    static func registeredOrSaid(_ key: BuildKey, of service: String, _ context: StageContext, repair: inout Bool) async -> (image: String, digest: String)? {
        do {
            guard let repository = context.plan.service(named: service)?.repository else { return nil }
            let target = try await RegistryTarget.resolve(repository: repository, aws: try context.awsClient(), environment: context.processEnvironment)
            switch try await key.image(in: target.client) {
            case .none:
                print("the registry has no image of this key yet (no tag \(key.tag)): building")
                return nil
            case .otherKey(let manifest, let labelled):
                print("the registry's \(key.tag) names \(manifest.digest), which "
                    + (labelled.map { "says it was built from build key \($0.prefix(12))" } ?? "has no build-key label (not built by this pipeline, or by an older one)")
                    + ": not taken; building, and the tag is put back on what this key builds")
                repair = true
                return nil
            case .found(let manifest):
                return ("\(target.repositoryURI)@\(manifest.digest)", manifest.digest.description)
            }
        } catch {
            print("could not ask the registry for the image of this key (\(error)): building")
            return nil
        }
    }

    /// The image the registry holds for `key` in the service's repository (by digest, its manifest checked against
    /// it), or nil when there is none.
    static func registered(_ key: BuildKey, of service: String, _ context: StageContext) async throws -> (image: String, digest: String)? {
        try await registered(key.tag, of: service, context)
    }

    /// The image `reference` (a tag or a digest) names in the service's repository, its manifest checked against
    /// its digest, or nil when there is none.
    static func registered(_ reference: String, of service: String, _ context: StageContext) async throws -> (image: String, digest: String)? {
        guard let repository = context.plan.service(named: service)?.repository else { return nil }
        let target = try await RegistryTarget.resolve(repository: repository, aws: try context.awsClient(), environment: context.processEnvironment)
        guard let manifest = try await target.client.manifest(reference) else { return nil }
        return ("\(target.repositoryURI)@\(manifest.digest)", manifest.digest.description)
    }

    struct Result {
        let builder: String
        let name: String
        let reference: String
        let path: String
    }

    static func build(
        _ spec: BuildImageSpec, _ run: StageContext, builder: String, executable: String, timestamp: Int?, key: String? = nil,
        cache: RemoteLayerCache? = nil
    ) throws -> Result {
        let environment = run.processEnvironment
        let artifacts = run.artifacts.path
        let tag = try run.fill(spec.tag, field: "the image tag")
        guard !tag.isEmpty else { throw StageError("the image tag is empty") }
        let context = run.workspace.appending(path: spec.build.context).standardizedFileURL
        let dockerfile = context.appending(path: spec.build.dockerfile)
        guard FileManager.default.fileExists(atPath: dockerfile.path) else {
            throw StageError(
                "no \(spec.build.dockerfile) in \(spec.build.context) of the checked-out commit (\(dockerfile.path)); check the service's build context, or put a Checkout stage before the build")
        }
        let name = "localhost/pipeline/\(spec.service):\(tag)"
        var options = ["-f", dockerfile.path, "-t", name]
        let arguments = try spec.build.arguments.mapValues { try run.fill($0, field: "a build argument") }
        for (key, value) in arguments.sorted(by: { $0.key < $1.key }) { options += ["--build-arg", "\(key)=\(value)"] }
        if let target = spec.build.target { options += ["--target", target] }
        if let key { options += ["--label", "\(BuildKeyLabel.name)=\(key)"] }
        // Stamped with the time of the commit that last changed what the image is built from: the same content
        // makes the same layers and digest, whichever commit (or retried run) builds it.

        let cached = cache?.arguments ?? []
        let steps: [(what: String, arguments: [String])]
        let path: String
        let reference: String
        switch builder {
        case "buildah":
            // Without a daemon or privileges: vfs storage and chroot isolation, unless buildah's own variables say otherwise.
            // --layers keeps each step's result in buildah's storage, so an unchanged step is not run again.
            let storage = environment["STORAGE_DRIVER"] == nil ? ["--storage-driver", "vfs"] : []
            let isolation = environment["BUILDAH_ISOLATION"] == nil ? ["--isolation", "chroot"] : []
            path = "\(artifacts)/image"
            reference = tag
            steps = [
                ("buildah bud", storage + ["bud", "--layers"] + isolation + cached + options + (timestamp.map { ["--timestamp", String($0)] } ?? []) + [context.path]),
                ("buildah push", storage + ["push", "--quiet", name, "oci:\(path):\(tag)"]),
            ]
        case "podman":
            path = "\(artifacts)/image.tar"
            reference = name
            steps = [("podman build", ["build", "--layers"] + cached + options + (timestamp.map { ["--timestamp", String($0)] } ?? []) + [context.path]),
                     ("podman save", ["save", "--format", "oci-archive", "-o", path, name])]
        default:
            path = "\(artifacts)/image.tar"
            reference = name
            steps = [("docker build", ["build"] + options + [context.path]), ("docker save", ["save", "-o", path, name])]
        }
        for step in steps {
            print("$ \(builder) \(step.arguments.joined(separator: " "))")
            var outcome = try ChildProcess.run(executable, step.arguments, in: context, environment: environment)
            let without = step.arguments.removing(cached)
            if outcome.status != 0, without != step.arguments, RemoteLayerCache.failedOnCache(outcome.tail) {
                // The cache only saves time: a registry that refuses it must not fail the build.
                print("the layer cache in \(cache?.reference ?? "-") failed (\(outcome.tail.last ?? "")); building again with this host's cache only")
                print("$ \(builder) \(without.joined(separator: " "))")
                outcome = try ChildProcess.run(executable, without, in: context, environment: environment)
            }
            guard outcome.status == 0 else {
                throw StageError("\(step.what) failed with exit status \(outcome.status); its last lines:\n  " + outcome.tail.joined(separator: "\n  "))
            }
        }
        return Result(builder: builder, name: name, reference: reference, path: path)
    }

    /// The builder the service names, or the first one found on PATH (docker only when its daemon answers).
    static func pick(_ named: String?, environment: [String: String]) throws -> (String, String) {
        if let named {
            guard builders.contains(named) else { throw StageError("unknown builder \(named); use one of \(builders.joined(separator: ", "))") }
            guard let path = ChildProcess.find(named, environment: environment) else {
                throw StageError("the service builds with \(named), which is not on PATH; install it or name another builder")
            }
            return (named, path)
        }
        for candidate in builders {
            guard let path = ChildProcess.find(candidate, environment: environment) else { continue }
            if candidate == "docker", (try? ChildProcess.quietStatus(path, ["info"])) != 0 { continue }
            return (candidate, path)
        }
        throw StageError("no image builder found: install buildah (no daemon needed), podman or docker, or put one on PATH")
    }
}

extension ChildProcess {
    /// The exit status of a command whose output does not matter.
    static func quietStatus(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(filePath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

extension Array where Element == String {
    /// This list without the run of elements equal to `run` (the first place it occurs), or itself.
    func removing(_ run: [String]) -> [String] {
        guard !run.isEmpty, run.count <= count else { return self }
        for start in 0...(count - run.count) where Array(self[start..<start + run.count]) == run {
            return Array(self[..<start] + self[(start + run.count)...])
        }
        return self
    }
}
