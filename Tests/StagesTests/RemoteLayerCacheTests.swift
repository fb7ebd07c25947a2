import Foundation
import Testing

@testable import Stages

/// The layer cache's helpers that decide alone: which failure is the cache's, and which credentials are left over.
@Suite struct RemoteLayerCacheTests {
    @Test func onlyTheBuildersErrorAboutTheCacheCountsAsTheCachesFailure() {
        // A failing RUN step after steps whose layers went to the cache: the step failed, not the cache.
        let failedStep = [
            "--> Pushing cache 127.0.0.1:5000/sv-user-cache:27a09e9d",
            "[1/2] STEP 5/6: RUN false",
            "Error: building at STEP \"RUN false\": exit status 1",
        ]
        #expect(!RemoteLayerCache.failedOnCache(failedStep))
        let cacheRefused = [
            "--> Pushing cache 127.0.0.1:5000/sv-user-cache:27a09e9d",
            "Error: failed pushing cache to {{{\"127.0.0.1:5000\" \"sv-user-cache\"} \"27a09e\"}}: unauthorized: authentication required",
        ]
        #expect(RemoteLayerCache.failedOnCache(cacheRefused))
        #expect(RemoteLayerCache.failedOnCache(["Error: failed pulling cache from 127.0.0.1:5000/x: manifest unknown"]))
        #expect(!RemoteLayerCache.failedOnCache(["--> Pushing cache 127.0.0.1:5000/x:1"]))
    }

    @Test func theCredentialsOfBuildsThatAreGoneAreSwept() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }  // the test's own folder
        // A process that has ended: its pid names no process now.
        let ended = Process()
        ended.executableURL = URL(filePath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let gone = folder.appending(path: "\(RemoteLayerCache.folderPrefix)\(ended.processIdentifier)-\(UUID().uuidString)")
        let live = folder.appending(path: "\(RemoteLayerCache.folderPrefix)\(getpid())-\(UUID().uuidString)")
        let other = folder.appending(path: "pipeline-something-else")
        for made in [gone, live, other] {
            try FileManager.default.createDirectory(at: made, withIntermediateDirectories: false)
            #expect(FileManager.default.createFile(atPath: made.appending(path: "auth.json").path, contents: Data("{}".utf8)))
        }
        RemoteLayerCache.sweep(in: folder)
        #expect(!FileManager.default.fileExists(atPath: gone.path))
        #expect(FileManager.default.fileExists(atPath: live.path) && FileManager.default.fileExists(atPath: other.path))
    }
}
