import Foundation
@testable import Git
import TestSupport
import Testing

private let noCredentials = GitCredentials.fromEnvironment([:])

@Suite struct GitSourceTests {
    let fixture: GitFixture
    let cache = TemporaryDirectory("pipeline-git-cache")

    init() throws {
        fixture = GitFixture()
        try fixture.makeApplication()
    }

    var source: GitSource { GitSource(url: fixture.root.appending(path: "app").path, cache: cache.url) }

    @Test func shasBranchesAndTagsResolveToFullSHAs() throws {
        let first = try fixture.sha("v1")
        let second = try fixture.sha("main")
        #expect(try source.resolve(sha: nil, ref: nil, branch: "staging", credentials: noCredentials).sha == first)
        #expect(try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials).sha == second)
        #expect(try source.resolve(sha: nil, ref: "v1", branch: "x", credentials: noCredentials).sha == first)
        #expect(try source.resolve(sha: nil, ref: "v1-annotated", branch: "x", credentials: noCredentials).sha == first)
        #expect(try source.resolve(sha: String(first.prefix(7)), ref: nil, branch: "x", credentials: noCredentials).sha == first)
        let commit = try source.resolve(sha: first.uppercased(), ref: nil, branch: "x", credentials: noCredentials)
        #expect(commit.author == "Alice Example <alice@example.com>")
        #expect(commit.subject == "first commit")
        #expect(abs(commit.time.timeIntervalSinceNow) < 600)
    }

    @Test func wrongSHAsAndRefsAreRefusedWithTheReason() throws {
        let tree = try fixture.sha("HEAD:deep")
        let blob = try fixture.sha("HEAD:run.sh")
        func error(sha: String? = nil, ref: String? = nil) -> String {
            do {
                _ = try source.resolve(sha: sha, ref: ref, branch: "main", credentials: noCredentials)
                return "resolved"
            } catch {
                return error.description
            }
        }
        #expect(error(sha: "deadbeef") == "no commit deadbeef in the repository (after fetching it); check the SHA, or push the commit first")
        #expect(error(sha: tree) == "\(tree) is a tree, not a commit; give the SHA of a commit")
        #expect(error(sha: blob) == "\(blob) is a blob, not a commit; give the SHA of a commit")
        #expect(error(sha: "xyz") == "'xyz' is not a SHA: give 4 to 40 hexadecimal digits")
        #expect(error(ref: "nope") == "no branch or tag 'nope' in the repository; it has main, staging, tag v1, tag v1-annotated")
    }

    @Test func anAmbiguousShortSHAListsTheCandidates() throws {
        // Make blobs until two share their first four hex digits.
        var seen: [String: String] = [:]
        var pair: (String, String)?
        var index = 0
        while pair == nil {
            index += 1
            fixture.folder.write("app/blob-\(index).txt", "content \(index)\n")
            let sha = try fixture.git(["hash-object", "-w", "blob-\(index).txt"], in: "app")
            if let other = seen[String(sha.prefix(4))] { pair = (other, sha) } else { seen[String(sha.prefix(4))] = sha }
        }
        try fixture.git(["add", "."], in: "app")
        try fixture.git(["commit", "-qm", "blobs"], in: "app")
        let prefix = String(pair!.0.prefix(4))
        let result = Result { () throws(SourceError) in
            try source.resolve(sha: prefix, ref: nil, branch: "main", credentials: noCredentials)
        }
        guard case .failure(let error) = result, case .ambiguousSHA(let sha, let candidates) = error else {
            Issue.record("an ambiguous SHA was not refused: \(result)")
            return
        }
        #expect(sha == prefix)
        #expect(candidates.contains("\(pair!.0) (blob)"))
        #expect(candidates.contains("\(pair!.1) (blob)"))
    }

    @Test func checkoutWritesModesSymlinksFoldersAndSubmodulesAndNothingElse() throws {
        let workspace = TemporaryDirectory()
        workspace.write("left-over.txt", "from another run")
        let sha = try fixture.sha("v1")
        _ = try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials)
        try source.checkout(sha: sha, into: workspace.url, submodules: true, credentials: noCredentials)
        let files = FileManager.default
        #expect(!files.fileExists(atPath: workspace.url.appending(path: "left-over.txt").path))
        #expect(try String(contentsOf: workspace.url.appending(path: "deep/er/file.txt"), encoding: .utf8) == "hello\n")
        #expect(files.isExecutableFile(atPath: workspace.url.appending(path: "run.sh").path))
        #expect(!files.isExecutableFile(atPath: workspace.url.appending(path: "deep/er/file.txt").path))
        #expect(try files.destinationOfSymbolicLink(atPath: workspace.url.appending(path: "link").path) == "deep/er/file.txt")
        #expect(try String(contentsOf: workspace.url.appending(path: "vendor/lib/lib.txt"), encoding: .utf8) == "library one\n")
        #expect(!files.fileExists(atPath: workspace.url.appending(path: ".git").path))
        #expect(!files.fileExists(atPath: source.mirror.appending(path: "index").path), "the mirror is never written by a checkout")

        try source.checkout(sha: sha, into: workspace.url, submodules: false, credentials: noCredentials)
        #expect(!files.fileExists(atPath: workspace.url.appending(path: "vendor/lib/lib.txt").path))
    }

    @Test func aPathsContentAndTheCommitThatLastChangedItAreWhatGitSays() throws {
        // Two more commits on main that leave deep/ alone (the second commit changed it last), and then one that
        // changes it back to the first commit's content: the same tree again, changed last by that newest commit.
        fixture.folder.write("app/other.txt", "unrelated\n")
        try fixture.git(["add", "."], in: "app")
        try fixture.git(["commit", "-qm", "third commit"], in: "app")
        fixture.folder.write("app/other.txt", "unrelated again\n")
        try fixture.git(["commit", "-qam", "fourth commit"], in: "app")
        let fourth = try fixture.sha("main")
        let second = try fixture.sha("main~2")
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)

        let found = try source.content(of: ["deep", "run.sh", "", "missing/path"], at: fourth)
        #expect(found.map(\.objectID) == [
            try fixture.sha("main:deep"), try fixture.sha("main:run.sh"), try fixture.sha("main^{tree}"), nil,
        ])
        #expect(found[0].since.sha == second && found[0].since.subject == "second commit", "\(found[0])")
        #expect(found[0].since.sha == (try fixture.git(["log", "-1", "--format=%H", "--", "deep"], in: "app")))
        #expect(found[1].since.sha == (try fixture.git(["log", "-1", "--format=%H", "--", "run.sh"], in: "app")))
        #expect(found[2].since.sha == fourth, "the root changes with every commit")

        fixture.folder.write("app/deep/er/file.txt", "hello\n")
        try fixture.git(["commit", "-qam", "fifth commit: deep as in the first"], in: "app")
        let fifth = try fixture.sha("main")
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)
        let again = try source.content(of: ["deep"], at: fifth)[0]
        #expect(again.objectID == (try fixture.sha("v1:deep")), "the same content has the same id, whichever commit holds it")
        #expect(again.since.sha == fifth)
        #expect(throws: SourceError.self) { try source.content(of: ["deep"], at: String(repeating: "0", count: 40)) }
    }

    @Test func aCheckoutWritesGitsModesWhateverTheUmask() throws {
        // An image built from the checkout records each file's mode: under umask 077 files were 0600 and the same
        // commit built another image.
        let workspace = TemporaryDirectory()
        let sha = try fixture.sha("v1")
        let result = try runProcess(
            URL(filePath: "/bin/sh"),
            ["-c", "umask 077; exec \"$0\" checkout \"$1\" \"$2\" --sha \"$3\"", Project.executable.path,
             fixture.root.appending(path: "app").path, workspace.url.appending(path: "out").path, sha],
            environment: ["PIPELINE_HOME": workspace.url.appending(path: "home").path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: workspace.url.appending(path: "out/\(path)").path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode("deep/er/file.txt") == 0o644)
        #expect(try mode("run.sh") == 0o755)
        #expect(try mode("deep/er") == 0o755)
    }

    @Test func newCommitsArriveOnTheNextResolve() throws {
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)
        fixture.folder.write("app/new.txt", "new\n")
        try fixture.git(["add", "."], in: "app")
        try fixture.git(["commit", "-qm", "third commit"], in: "app")
        #expect(try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials).subject == "third commit")
        try fixture.git(["branch", "-D", "staging"], in: "app")
        #expect(throws: SourceError.self) { try source.resolve(sha: nil, ref: "staging", branch: "main", credentials: noCredentials) }
    }

    /// A full SHA the mirror has is resolved without asking the remote (here moved away): a hook's run of a commit
    /// it fetched already does not wait for the network. A branch still needs the remote.
    @Test func aKnownFullSHANeedsNoFetch() throws {
        let sha = try fixture.sha("main")
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)
        let app = fixture.root.appending(path: "app")
        let away = fixture.root.appending(path: "app-away")
        try FileManager.default.moveItem(at: app, to: away)
        defer { try? FileManager.default.moveItem(at: away, to: app) }  // puts it back for the fixture's cleanup
        #expect(try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials).sha == sha)
        #expect(throws: SourceError.self) { try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials) }
        #expect(throws: SourceError.self) { try source.resolve(sha: String(repeating: "e", count: 40), ref: nil, branch: "main", credentials: noCredentials) }
    }

    @Test func aDamagedMirrorIsClonedAgain() throws {
        let sha = try fixture.sha("main")
        _ = try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)
        let objects = source.mirror.appending(path: "objects")
        for case let file as URL in FileManager.default.enumerator(at: objects, includingPropertiesForKeys: nil)! {
            if !file.hasDirectoryPath { try? FileManager.default.removeItem(at: file) }
        }
        #expect(try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials).sha == sha)
        try "garbage".write(to: source.mirror.appending(path: "config"), atomically: true, encoding: .utf8)
        #expect(try source.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials).sha == sha)
        try "garbage".write(to: source.mirror.appending(path: "HEAD"), atomically: true, encoding: .utf8)
        #expect(try source.resolve(sha: String(sha.prefix(8)), ref: nil, branch: "main", credentials: noCredentials).sha == sha)
    }

    @Test func anUnreachableRemoteSaysSo() throws {
        let remote = GitSource(url: "git://127.0.0.1:\(freePort())/app", cache: cache.url)
        #expect {
            try remote.resolve(sha: nil, ref: nil, branch: "main", credentials: noCredentials)
        } throws: { error in
            "\(error)".hasPrefix("cannot fetch git://127.0.0.1:") && "\(error)".contains("onnection refused")
        }
    }

    @Test func aSilentRemoteIsGivenUpOnSayingSo() throws {
        // Takes the connection and never answers, as a hung git daemon would.
        let server = ServerProcess.python("""
            import socket
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            print(listener.getsockname()[1], flush=True)
            held = []
            while True:
                held.append(listener.accept()[0])
            """)
        let port = try server.port()
        var credentials = noCredentials
        credentials.timeout = 1
        let remote = GitSource(url: "git://127.0.0.1:\(port)/app", cache: cache.url)
        #expect {
            try remote.resolve(sha: nil, ref: nil, branch: "main", credentials: credentials)
        } throws: { error in
            "\(error)" == "cannot fetch git://127.0.0.1:\(port)/app: gave up on 127.0.0.1:\(port): nothing received for 1 s"
        }
        #expect(GitCredentials.fromEnvironment(["PIPELINE_GIT_TIMEOUT": "2.5"]).timeout == 2.5)
        #expect(GitCredentials.fromEnvironment([:]).timeout == 120)
    }

    @Test func submoduleURLsResolveAgainstTheSuperproject() {
        #expect(GitSource.resolve("../lib.git", relativeTo: "https://example.com/team/app.git") == "https://example.com/team/lib.git")
        #expect(GitSource.resolve("./sub", relativeTo: "/srv/app") == "/srv/app/sub")
        #expect(GitSource.resolve("git://x/y", relativeTo: "/srv/app") == "git://x/y")
    }
}

@Suite struct LocalMirrorTests {
    @Test func aFirstMirrorOfALocalRepositoryCopiesItsPacks() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        try fixture.git(["gc", "-q"], in: "app")
        let cache = TemporaryDirectory()
        let source = GitSource(url: "file://" + fixture.root.appending(path: "app").path, cache: cache.url)
        try source.cloneLocally(from: fixture.root.appending(path: "app").path)
        let packs = { (folder: URL) in
            try FileManager.default.contentsOfDirectory(atPath: folder.appending(path: "objects/pack").path).sorted()
        }
        #expect(try packs(source.mirror) == packs(fixture.root.appending(path: "app/.git")))
        let commit = try source.resolve(sha: nil, ref: "v1", branch: "main", credentials: GitCredentials.fromEnvironment([:]))
        #expect(commit.sha == (try fixture.sha("v1")))
    }
}

@Suite struct PackConsolidationTests {
    @Test func aMirrorFetchedManyTimesKeepsFewPacksAndEveryCommit() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let cache = TemporaryDirectory()
        // Over git://, as a remote: every fetch brings a pack (a local path would copy the repository's objects).
        let (daemon, port) = try ServerProcess.gitDaemon(serving: fixture.root)
        defer { _ = daemon }
        let source = GitSource(url: "git://127.0.0.1:\(port)/app", cache: cache.url)
        let credentials = GitCredentials.fromEnvironment([:])
        var shas = [try source.resolve(sha: nil, ref: nil, branch: "main", credentials: credentials).sha]
        let packFolder = source.mirror.appending(path: "objects/pack").path
        var most = 0
        for round in 0..<(PackConsolidation.limit + 6) {
            fixture.folder.write("app/round-\(round).txt", "round \(round)\n")
            try fixture.git(["add", "."], in: "app")
            try fixture.git(["commit", "-qm", "round \(round)"], in: "app")
            shas.append(try source.resolve(sha: nil, ref: nil, branch: "main", credentials: credentials).sha)
            most = max(most, try PackConsolidation.packs(in: packFolder).count)
        }
        #expect(most == PackConsolidation.limit, "the limit was reached, and never passed once a fetch was done")
        #expect(try PackConsolidation.packs(in: packFolder).count < PackConsolidation.limit)
        for (index, sha) in shas.enumerated() {
            #expect(try source.resolve(sha: sha, ref: nil, branch: "main", credentials: credentials).sha == sha)
            let workspace = TemporaryDirectory()
            try source.checkout(sha: sha, into: workspace.url, submodules: false, credentials: credentials)
            if index > 0 {
                #expect(try String(contentsOf: workspace.url.appending(path: "round-\(index - 1).txt"), encoding: .utf8) == "round \(index - 1)\n")
            }
        }
        let verify = try runProcess(URL(filePath: "/usr/bin/git"), ["--git-dir", source.mirror.path, "fsck", "--strict"])
        #expect(verify.status == 0, "git fsck: \(verify.stderr)")
    }

    @Test func onlyPacksSmallerThanTwiceTheirSmallerNeighboursAreRolledUp() {
        let packs = [1, 1, 2, 3, 100, 1000].enumerated().map { PackConsolidation.Pack(base: "p\($0.offset)", size: $0.element) }
        #expect(PackConsolidation.toMerge(packs).map(\.size) == [1, 1, 2, 3])
        let geometric = [1, 3, 10, 40].map { PackConsolidation.Pack(base: "p\($0)", size: $0) }
        #expect(PackConsolidation.toMerge(geometric).isEmpty)
    }
}
