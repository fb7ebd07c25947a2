import Foundation
import OCI
import PipelineDSL
import StageContract

/// The builder's layer cache in a repository of the service's registry (`BuildImageSpec.cacheRepository`): the
/// `--cache-from`/`--cache-to` arguments of buildah and podman, so that a step another host or run built is pulled
/// instead of run, and each step this build runs is pushed for the next. The registry's credentials go to the
/// builder in an auth file of its own format (containers-auth.json) in a folder only this user can read, removed
/// when the build ends; they never appear on its command line or in the log.
///
/// The cache only ever saves time: when the repository cannot be used (missing, refused, unreachable), the build
/// says why and runs with the host's own cache.
final class RemoteLayerCache {
    /// The cache's image reference (`HOST/REPOSITORY`).
    let reference: String
    /// The builder arguments that use it.
    let arguments: [String]
    private let folder: URL?
    private var signalSources: [any DispatchSourceSignal] = []

    private init(reference: String, arguments: [String], folder: URL?) {
        self.reference = reference
        self.arguments = arguments
        self.folder = folder
        guard let folder else { return }
        // A stage ended by the runner (a timeout, or Ctrl-C: SIGTERM) removes the credentials before it goes.
        for number in [SIGTERM, SIGINT, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                try? FileManager.default.removeItem(at: folder)  // Best effort on the way out; a later build sweeps.
                print("ended by signal \(number) during the build; the builder's credentials were removed")
                exit(128 + number)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    deinit { remove() }

    /// Removes the credentials (also when the object goes), and gives the signals back their default action.
    func remove() {
        if let folder { try? FileManager.default.removeItem(at: folder) }  // Gone already is fine; nothing else holds it.
        for source in signalSources { source.cancel() }
        if !signalSources.isEmpty { for number in [SIGTERM, SIGINT, SIGHUP] { signal(number, SIG_DFL) } }
        signalSources = []
    }

    /// The cache `spec` names for `builder`, checked against the registry; nil (having said why) when there is
    /// none to use.
    static func prepare(_ spec: BuildImageSpec, builder: String, _ context: StageContext) async -> RemoteLayerCache? {
        guard let repository = spec.cacheRepository else { return nil }
        guard builder == "buildah" || builder == "podman" else {
            print("the layer cache in \(repository) is used by buildah and podman, not \(builder): building with \(builder)'s own cache")
            return nil
        }
        do {
            let target = try await RegistryTarget.resolve(repository: repository, aws: try context.awsClient(), environment: context.processEnvironment)
            // A tag no cache writes: the answer (none) shows the repository and the credentials work before the
            // build depends on them.
            _ = try await target.client.manifest("pipeline-cache-check")
            let reference = "\(target.client.host)/\(repository)"
            var arguments = ["--cache-from", reference, "--cache-to", reference]
            if target.client.isPlainHTTP { arguments += ["--tls-verify=false"] }
            var folder: URL?
            if let credentials = try await target.client.currentCredentials() {
                let made = try privateFolder()
                folder = made
                let file = made.appending(path: "auth.json")
                let auth = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
                let document = try JSONSerialization.data(withJSONObject: ["auths": [target.client.host: ["auth": auth]]])
                guard FileManager.default.createFile(atPath: file.path, contents: document, attributes: [.posixPermissions: 0o600]) else {
                    try? FileManager.default.removeItem(at: made)  // Best effort: the folder is empty or holds a partial file of ours.
                    throw StageError("could not write the builder's auth file in \(made.path)")
                }
                arguments += ["--authfile", file.path]
            }
            print("layer cache: \(reference) (steps found there are pulled, steps built here are pushed)")
            return RemoteLayerCache(reference: reference, arguments: arguments, folder: folder)
        } catch {
            print("the layer cache in \(repository) cannot be used (\(error)): building with this host's cache only")
            return nil
        }
    }

    static let folderPrefix = "pipeline-build-auth-"

    /// A new folder under the temporary directory that only this user can enter, named with this process's id;
    /// first, the folders of build processes that are gone (killed before they could remove theirs) are removed.
    private static func privateFolder() throws -> URL {
        sweep()
        let folder = FileManager.default.temporaryDirectory.appending(path: "\(folderPrefix)\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return folder
    }

    /// Removes the auth folders whose build process no longer runs (a stage ended by a signal or kill -9 leaves
    /// its folder behind; the next build on the host removes it).
    static func sweep(in directory: URL = FileManager.default.temporaryDirectory) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []  // none to sweep when unreadable
        for name in names where name.hasPrefix(folderPrefix) {
            guard let pid = Int32(name.dropFirst(folderPrefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }  // still running (or another user's): not ours to remove
            try? FileManager.default.removeItem(at: directory.appending(path: name))  // best effort; tried again next build
        }
    }

    /// Whether a failed build's error (its last `Error:` line) says the cache was what failed, as buildah words
    /// it ("failed pushing cache to …", "failed pulling cache from …"); then the build is run again without it.
    /// Its progress lines ("--> Pushing cache …") say nothing about why it failed.
    static func failedOnCache(_ tail: [String]) -> Bool {
        guard let error = tail.last(where: { $0.hasPrefix("Error:") })?.lowercased() else { return false }
        return error.contains("pushing cache") || error.contains("pulling cache")
    }
}
