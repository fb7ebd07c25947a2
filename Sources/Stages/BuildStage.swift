import Foundation
import PipelineDSL
import StageContract

/// The build stage: runs the builder (docker, podman or buildah) on the service's context in the checked-out
/// commit, tags the image with the commit SHA, and exports it into the stage's artifacts (an OCI image layout from
/// buildah, an archive from docker and podman) for the push stage.
enum BuildStage {
    static let builders = ["docker", "podman", "buildah"]

    static func run(_ spec: BuildImageSpec, _ context: StageContext) -> Int32 {
        do {
            let result = try build(spec, context)
            print("built \(spec.service) as \(result.name) with \(result.builder); image at \(result.path)")
            try context.outputs.set(BuildOutput(image: result.path, ref: result.reference, builder: result.builder))
            return 0
        } catch {
            StageContext.fail("building the image of \(spec.service): \(error)")
            return 1
        }
    }

    struct Result {
        let builder: String
        let name: String
        let reference: String
        let path: String
    }

    static func build(_ spec: BuildImageSpec, _ run: StageContext) throws -> Result {
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
        let (builder, executable) = try pick(spec.build.builder, environment: environment)
        let name = "localhost/pipeline/\(spec.service):\(tag)"
        var options = ["-f", dockerfile.path, "-t", name]
        for (key, value) in spec.build.arguments.sorted(by: { $0.key < $1.key }) { options += ["--build-arg", "\(key)=\(value)"] }
        if let target = spec.build.target { options += ["--target", target] }
        // One commit, one image: stamped with the commit's time, a rebuild of the same commit (a retried run)
        // makes the same layers and digest, so its immutable SHA tag accepts it.
        let timestamp = run.commitTime

        let steps: [(what: String, arguments: [String])]
        let path: String
        let reference: String
        switch builder {
        case "buildah":
            // Without a daemon or privileges: vfs storage and chroot isolation, unless buildah's own variables say otherwise.
            let storage = environment["STORAGE_DRIVER"] == nil ? ["--storage-driver", "vfs"] : []
            let isolation = environment["BUILDAH_ISOLATION"] == nil ? ["--isolation", "chroot"] : []
            path = "\(artifacts)/image"
            reference = tag
            steps = [
                ("buildah bud", storage + ["bud"] + isolation + options + (timestamp.map { ["--timestamp", String($0)] } ?? []) + [context.path]),
                ("buildah push", storage + ["push", "--quiet", name, "oci:\(path):\(tag)"]),
            ]
        case "podman":
            path = "\(artifacts)/image.tar"
            reference = name
            steps = [("podman build", ["build"] + options + [context.path]), ("podman save", ["save", "--format", "oci-archive", "-o", path, name])]
        default:
            path = "\(artifacts)/image.tar"
            reference = name
            steps = [("docker build", ["build"] + options + [context.path]), ("docker save", ["save", "-o", path, name])]
        }
        for step in steps {
            print("$ \(builder) \(step.arguments.joined(separator: " "))")
            let outcome = try ChildProcess.run(executable, step.arguments, in: context, environment: environment)
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
