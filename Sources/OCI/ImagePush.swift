import Foundation
import Synchronization

/// Pushes a `LocalImage` to a repository: every blob first (skipped when present, mounted from a sibling repository
/// when one has it, else uploaded, several at a time), then the manifests children first, then the tags. A tag that
/// already points at another digest is refused unless `force`.
public struct ImagePush: Sendable {
    /// How the push goes.
    public struct Options: Sendable {
        /// Uploads at once.
        public var connections = 4
        /// Blobs up to this size go in one PUT; larger ones in PATCHes of this size (ECR wants at least 5 MB).
        public var chunkSize: UInt64 = 64 << 20
        /// Attempts per blob when the registry drops the connection or answers 5xx.
        public var attempts = 3
        /// Move a tag that points at another digest.
        public var force = false
        /// Tags moved whatever they point at (an environment's tag follows its newest image).
        public var moving: Set<String> = []
        /// Repositories of the same registry to mount blobs from when they have them.
        public var mountFrom: [String] = []

        /// The defaults.
        public init() {}
    }

    /// What one push did.
    public struct Report: Sendable, CustomStringConvertible {
        /// The digest the tags point at.
        public let digest: Digest
        /// Blobs the registry already had.
        public var present = 0
        /// Blobs mounted from another repository.
        public var mounted = 0
        /// Blobs uploaded, and their bytes.
        public var uploaded = 0
        /// Bytes uploaded.
        public var uploadedBytes: UInt64 = 0
        /// The tags set.
        public var tags: [String] = []

        /// "sha256:... (3 blobs uploaded, 42.1 MB; 2 present; 1 mounted)".
        public var description: String {
            "\(digest) (\(uploaded) blobs uploaded, \(String(format: "%.1f", Double(uploadedBytes) / 1_000_000)) MB; \(present) already there; \(mounted) mounted)"
        }
    }

    let client: RegistryClient
    let options: Options

    /// A push through `client`.
    public init(client: RegistryClient, options: Options = Options()) {
        self.client = client
        self.options = options
    }

    /// Pushes `image` and points each of `tags` at it; `progress` hears each step.
    public func push(_ image: LocalImage, tags: [String], progress: @escaping @Sendable (String) -> Void = { _ in }) async throws(ImageError) -> Report {
        // Refuse before sending anything: a tag that already names another image stays as it is.
        try await refuseMoving(tags, to: image.root.digest)
        var report = Report(digest: image.root.digest)
        let done = DoneBlobs()
        let outcomes: [BlobOutcome]
        do {
            outcomes = try await withThrowingTaskGroup(of: BlobOutcome.self) { group in
                var pending = image.blobs.sorted { $0.size > $1.size }[...]
                var results: [BlobOutcome] = []
                for _ in 0..<max(1, options.connections) {
                    guard let blob = pending.popFirst() else { break }
                    group.addTask { try await self.send(blob, progress: progress) }
                }
                while let outcome = try await group.next() {
                    results.append(outcome)
                    done.add(outcome)
                    if let blob = pending.popFirst() { group.addTask { try await self.send(blob, progress: progress) } }
                }
                return results
            }
        } catch let error as ImageError {
            let (count, uploaded) = done.counts
            throw ImageError(
                "\(error.description); by then \(count) of \(image.blobs.count) blobs were in the registry (\(uploaded) uploaded by this push); nothing was tagged (the blobs sent stay, unreferenced)")
        } catch {
            throw ImageError("\(error)")
        }
        for outcome in outcomes {
            switch outcome {
            case .present: report.present += 1
            case .mounted: report.mounted += 1
            case .uploaded(let bytes):
                report.uploaded += 1
                report.uploadedBytes += bytes
            }
        }
        for manifest in image.manifests where manifest != image.root {
            try await client.putManifest(manifest, as: manifest.digest.description)
        }
        for tag in tags {
            try await client.putManifest(image.root, as: tag)
            report.tags.append(tag)
            progress("tagged \(client.repository):\(tag)")
        }
        if tags.isEmpty { try await client.putManifest(image.root, as: image.root.digest.description) }
        return report
    }

    /// Points each of `tags` at `root`, an image the registry already holds whole (nothing is uploaded); the same
    /// rule as a push: a tag that names another image stays unless moving or forced.
    public func tag(_ root: ImageManifest, tags: [String], progress: @escaping @Sendable (String) -> Void = { _ in }) async throws(ImageError) -> Report {
        try await refuseMoving(tags, to: root.digest)
        var report = Report(digest: root.digest)
        for tag in tags {
            try await client.putManifest(root, as: tag)
            report.tags.append(tag)
            progress("tagged \(client.repository):\(tag)")
        }
        return report
    }

    /// Throws when one of `tags` (not moving, and without `force`) already names an image other than `digest`.
    private func refuseMoving(_ tags: [String], to digest: Digest) async throws(ImageError) {
        guard !options.force else { return }
        for tag in tags where !options.moving.contains(tag) {
            if let existing = try await client.manifestDigest(tag), existing != digest {
                var conflict = ImageError(
                    "\(client.repository):\(tag) already points at \(existing), not at \(digest); tags are immutable (push with --force to move it)")
                conflict.permanent = true
                throw conflict
            }
        }
    }

    /// The blobs finished so far, for a failure's message.
    final class DoneBlobs: Sendable {
        /// Finished, and uploaded of those.
        private let done = Mutex((finished: 0, uploaded: 0))

        func add(_ outcome: BlobOutcome) {
            done.withLock {
                $0.finished += 1
                if case .uploaded = outcome { $0.uploaded += 1 }
            }
        }

        var counts: (Int, Int) { done.withLock { ($0.finished, $0.uploaded) } }
    }

    enum BlobOutcome: Sendable {
        case present
        case mounted
        case uploaded(UInt64)
    }

    private func send(_ blob: ImageBlob, progress: @Sendable (String) -> Void) async throws(ImageError) -> BlobOutcome {
        var attempt = 0
        while true {
            attempt += 1
            do {
                if try await client.hasBlob(blob.digest) {
                    progress("\(blob.digest.short) present")
                    return .present
                }
                for source in options.mountFrom where source != client.repository {
                    if try await client.hasBlob(blob.digest, in: source), try await client.mount(blob.digest, from: source) {
                        progress("\(blob.digest.short) mounted from \(source)")
                        return .mounted
                    }
                }
                try await client.upload(blob, chunkSize: options.chunkSize)
                progress("\(blob.digest.short) uploaded (\(blob.size) bytes)")
                return .uploaded(blob.size)
            } catch {
                guard error.transient, attempt < options.attempts else {
                    throw attempt > 1 ? ImageError("\(error.description) (after \(attempt) attempts)") : error
                }
                progress("\(blob.digest.short): \(error.description); trying again")
                try? await Task.sleep(nanoseconds: UInt64(attempt) * 500_000_000)
            }
        }
    }
}

extension Digest {
    /// The first 12 hex digits, for progress lines.
    public var short: String { String(hex.prefix(12)) }
}
