import Foundation
import Git
import PipelineDSL
import Stages
import Testing
import TestSupport

/// What a build key covers, against a real repository: everything that changes the image changes the key.
@Suite struct BuildKeyTests {
    let fixture = GitFixture()
    let cache = TemporaryDirectory("pipeline-build-key-cache")

    init() throws {
        try FileManager.default.createDirectory(at: fixture.root.appending(path: "app"), withIntermediateDirectories: true)
        try fixture.git(["init", "-q", "-b", "main"], in: "app")
        fixture.folder.write("app/services/api/app.txt", "api 1\n")
        fixture.folder.write("app/docker/api.Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n")
        try FileManager.default.createSymbolicLink(
            atPath: fixture.root.appending(path: "app/services/api/Dockerfile").path, withDestinationPath: "../../docker/api.Dockerfile")
        try FileManager.default.createSymbolicLink(atPath: fixture.root.appending(path: "app/services/live").path, withDestinationPath: "api")
        fixture.folder.write("app/README.md", "readme\n")
        try commit("first")
    }

    func commit(_ message: String) throws {
        try fixture.git(["add", "-A"], in: "app")
        try fixture.git(["commit", "-qm", message], in: "app")
    }

    func key(context: String = "services/api", arguments: [String: String] = [:], builder: String? = nil) throws -> BuildKey {
        let source = GitSource(url: fixture.root.appending(path: "app").path, cache: cache.url)
        let sha = try fixture.sha("main")
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: GitCredentials.fromEnvironment([:]))
        return try BuildKey.of(
            BuildImageSpec(service: "api", build: BuildSpec(context: context, arguments: arguments, builder: builder)), source: source, sha: sha)
    }

    @Test func onlyWhatTheImageIsMadeOfChangesTheKey() throws {
        let first = try key()
        fixture.folder.write("app/README.md", "readme, changed\n")
        try commit("outside the context")
        let same = try key()
        #expect(same.value == first.value && same.since.sha == first.since.sha, "a change outside the context keeps the key and its commit")

        // A Dockerfile that links out of the context: its target's content is in the key.
        fixture.folder.write("app/docker/api.Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\nLABEL changed=yes\n")
        try commit("the linked Dockerfile")
        let second = try key()
        #expect(second.value != first.value)

        // The checkout's filters: a .gitattributes above the context.
        fixture.folder.write("app/.gitattributes", "*.txt eol=crlf\n")
        try commit("attributes")
        let third = try key()
        #expect(third.value != second.value)

        // A context that is a link is followed to what it names.
        let linked = try key(context: "services/live")
        #expect(linked.value == third.value, "services/live is services/api")
        fixture.folder.write("app/services/api/app.txt", "api 2\n")
        try commit("the app")
        #expect(try key(context: "services/live").value != linked.value)
    }

    @Test func argumentsCannotPassForOneAnotherAndTheNamedBuilderCounts() throws {
        let two = try key(arguments: ["MODE": "safe", "DEBUG": "0"])
        let one = try key(arguments: ["DEBUG": "0\narg MODE=safe"])
        #expect(two.value != one.value)
        #expect(try key(builder: "buildah").value != (try key(builder: "docker").value))
        #expect(try key().value == (try key().value), "the same commit has the same key")
    }

    @Test func aLinkOutOfTheRepositoryIsRefused() throws {
        try FileManager.default.createSymbolicLink(atPath: fixture.root.appending(path: "app/services/out").path, withDestinationPath: "/etc")
        try commit("out")
        #expect(throws: (any Error).self) { try key(context: "services/out") }
    }
}
