import Foundation
@testable import Git
import TestSupport
import Testing

private let noCredentials = GitCredentials.fromEnvironment([:])

/// The checkout writes files itself, several at a time: what it writes must be what `git checkout` writes.
@Suite struct TreeWriterTests {
    let fixture = GitFixture()
    let cache = TemporaryDirectory("pipeline-git-cache")

    /// A repository of `count` files in nested folders plus the odd kinds of entry, committed; its HEAD.
    func makeRepository(count: Int, attributes: String?) throws -> String {
        try FileManager.default.createDirectory(at: fixture.root.appending(path: "repo"), withIntermediateDirectories: true)
        try fixture.git(["init", "-q"], in: "repo")
        for index in 0..<count {
            fixture.folder.write("repo/src/part\(index % 7)/deeper\(index % 3)/file\(index).txt", "line one of \(index)\nline two\n")
        }
        fixture.folder.write("repo/empty", "")
        fixture.folder.write("repo/notes.crlf", "first\nsecond\n")
        fixture.folder.write("repo/version.id", "$Id$\n")
        fixture.folder.write("repo/data.bin", "binary\u{0}\nbytes\n")
        fixture.folder.write("repo/bin/tool", "#!/bin/sh\necho tool\n")
        chmod(fixture.root.appending(path: "repo/bin/tool").path, 0o755)
        try FileManager.default.createSymbolicLink(
            atPath: fixture.root.appending(path: "repo/current").path, withDestinationPath: "src/part1/deeper1/file1.txt")
        try FileManager.default.createSymbolicLink(
            atPath: fixture.root.appending(path: "repo/dangling").path, withDestinationPath: "../nowhere")
        if let attributes { fixture.folder.write("repo/.gitattributes", attributes) }
        try fixture.git(["add", "-A"], in: "repo")
        // A submodule's commit with no .gitmodules entry: checked out as an empty folder, like git does.
        try fixture.git(["update-index", "--add", "--cacheinfo", "160000,\(String(repeating: "ab", count: 20)),vendor/sub"], in: "repo")
        try fixture.git(["commit", "-qm", "files"], in: "repo")
        return try fixture.sha("HEAD", in: "repo")
    }

    /// What git itself checks out for `sha`.
    func gitCheckout(_ sha: String) throws -> URL {
        try fixture.git(["clone", "-q", "--no-checkout", "repo", "by-git"], in: ".")
        try fixture.git(["checkout", "-q", sha], in: "by-git")
        return fixture.root.appending(path: "by-git")
    }

    /// Every path under `folder` except `.git`, with what it is: a link's target, a file's mode bit and bytes.
    func describe(_ folder: URL) throws -> [String: String] {
        var found: [String: String] = [:]
        let files = FileManager.default
        for path in files.subpaths(atPath: folder.path) ?? [] where path != ".git" && !path.hasPrefix(".git/") {
            let full = folder.appending(path: path).path
            let attributes = try files.attributesOfItem(atPath: full)
            switch attributes[.type] as? FileAttributeType {
            case .typeSymbolicLink?: found[path] = "link -> " + (try files.destinationOfSymbolicLink(atPath: full))
            case .typeDirectory?: found[path] = "folder"
            default:
                let executable = ((attributes[.posixPermissions] as? Int ?? 0) & 0o100) != 0
                let bytes = try Data(contentsOf: URL(filePath: full))
                found[path] = (executable ? "executable " : "file ") + bytes.base64EncodedString()
            }
        }
        return found
    }

    /// The paths either side has that the other has not, or has otherwise.
    func differences(_ ours: [String: String], _ git: [String: String]) -> [String] {
        Set(ours.keys).union(git.keys).filter { ours[$0] != git[$0] }.sorted()
    }

    func checkout(_ sha: String) throws -> URL {
        let source = GitSource(url: fixture.root.appending(path: "repo").path, cache: cache.url)
        _ = try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials)
        let workspace = fixture.root.appending(path: "by-pipeline")
        try source.checkout(sha: sha, into: workspace, submodules: true, credentials: noCredentials)
        return workspace
    }

    @Test func writesWhatGitWritesFileForFile() throws {
        let sha = try makeRepository(count: 600, attributes: nil)
        let ours = try describe(checkout(sha))
        let git = try describe(gitCheckout(sha))
        #expect(ours.count > 600)
        #expect(differences(ours, git).isEmpty, "not as git wrote them: \(differences(ours, git).prefix(10))")
        #expect(ours["bin/tool"]?.hasPrefix("executable ") == true)
        #expect(ours["dangling"] == "link -> ../nowhere")
        #expect(ours["vendor/sub"] == "folder")
    }

    @Test func appliesTheCommitsAttributesAsGitDoes() throws {
        let sha = try makeRepository(count: 200, attributes: "*.crlf text eol=crlf\n*.id ident\n*.txt text eol=crlf\n")
        let ours = try describe(checkout(sha))
        let git = try describe(gitCheckout(sha))
        #expect(differences(ours, git).isEmpty, "not as git wrote them: \(differences(ours, git).prefix(10))")
        let workspace = fixture.root.appending(path: "by-pipeline")
        #expect(try Data(contentsOf: workspace.appending(path: "notes.crlf")) == Data("first\r\nsecond\r\n".utf8))
        let id = try String(contentsOf: workspace.appending(path: "version.id"), encoding: .utf8)
        #expect(id.hasPrefix("$Id: ") && id.count > 40, "the ident filter wrote the blob's id: \(id)")
    }

    @Test func coreAutocrlfOutsideTheTreeConvertsAsGitDoes() throws {
        let sha = try makeRepository(count: 100, attributes: nil)
        let source = GitSource(url: fixture.root.appending(path: "repo").path, cache: cache.url)
        _ = try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials)
        // No .gitattributes in the tree: only the configuration asks for CRLF.
        try fixture.git(["--git-dir", source.mirror.path, "config", "core.autocrlf", "true"], in: ".")
        let workspace = fixture.root.appending(path: "by-pipeline")
        try source.checkout(sha: sha, into: workspace, submodules: false, credentials: noCredentials)
        try fixture.git(["clone", "-q", "--no-checkout", "repo", "by-git"], in: ".")
        try fixture.git(["-c", "core.autocrlf=true", "checkout", "-q", sha], in: "by-git")
        let ours = try describe(workspace)
        let git = try describe(fixture.root.appending(path: "by-git"))
        #expect(differences(ours, git).isEmpty, "not as git wrote them: \(differences(ours, git).prefix(10))")
        #expect(try Data(contentsOf: workspace.appending(path: "notes.crlf")) == Data("first\r\nsecond\r\n".utf8))
    }

    @Test func namesAndLinkTargetsThatAreNotUTF8AreWrittenByteForByte() throws {
        try FileManager.default.createDirectory(at: fixture.root.appending(path: "repo"), withIntermediateDirectories: true)
        try fixture.git(["init", "-q"], in: "repo")
        // Latin-1 names, as an old repository may hold: not UTF-8.
        let python = URL(filePath: "/usr/bin/python3")
        let made = try runProcess(python, ["-c", """
            import os, sys
            os.chdir(sys.argv[1])
            os.makedirs(b"d\\xe9j\\xe0")
            open(b"d\\xe9j\\xe0/caf\\xe9.txt", "wb").write(b"latin-1\\n")
            os.symlink(b"d\\xe9j\\xe0/caf\\xe9.txt", b"lien")
            """, fixture.root.appending(path: "repo").path])
        try #require(made.status == 0, "\(made.stderr)")
        try fixture.git(["add", "-A"], in: "repo")
        try fixture.git(["commit", "-qm", "latin-1"], in: "repo")
        let sha = try fixture.sha("HEAD", in: "repo")
        let ours = try checkout(sha)
        let git = try gitCheckout(sha)
        let compared = try runProcess(python, ["-c", """
            import os, sys
            def describe(top):
                found = {}
                for folder, folders, files in os.walk(os.fsencode(top)):
                    folders[:] = [f for f in folders if f != b".git"]
                    for name in folders + files:
                        path = os.path.join(folder, name)
                        relative = os.path.relpath(path, os.fsencode(top))
                        if os.path.islink(path): found[relative] = b"link " + os.readlink(path)
                        elif os.path.isdir(path): found[relative] = b"folder"
                        else: found[relative] = open(path, "rb").read()
                return found
            ours, git = describe(sys.argv[1]), describe(sys.argv[2])
            print("same" if ours == git and b"lien" in ours and len(ours) == 3 else repr((ours, git)))
            """, ours.path, git.path])
        #expect(compared.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "same", "\(compared.stdout)\(compared.stderr)")
    }

    @Test func aTreeWithANameGitRefusesWritesNothing() throws {
        try FileManager.default.createDirectory(at: fixture.root.appending(path: "repo"), withIntermediateDirectories: true)
        try fixture.git(["init", "-q"], in: "repo")
        fixture.folder.write("blob.txt", "hidden\n")
        let blob = try fixture.git(["hash-object", "-w", "../blob.txt"], in: "repo")
        for name in [".GIT", ".."] {
            fixture.folder.write("entries.txt", "100644 blob \(blob)\tfine.txt\n100644 blob \(blob)\t\(name)\n")
            let made = try runProcess(URL(filePath: "/bin/sh"), ["-c", "git mktree < ../entries.txt"], in: fixture.root.appending(path: "repo"))
            let tree = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(made.status == 0 && tree.count == 40, "git mktree: \(made.stderr)")
            let commit = try fixture.git(["commit-tree", tree, "-m", "evil"], in: "repo")
            try fixture.git(["update-ref", "refs/heads/main", commit], in: "repo")
            #expect {
                _ = try checkout(commit)
            } throws: { error in
                "\(error)".contains("the tree has an entry git would not check out: '\(name)'")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.root.appending(path: "by-pipeline").path).isEmpty)
        }
    }

    @Test func aBlobWhoseContentNoLongerMatchesItsIdIsFetchedAgain() throws {
        let sha = try makeRepository(count: 20, attributes: nil)
        let source = GitSource(url: fixture.root.appending(path: "repo").path, cache: cache.url)
        _ = try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials)
        let blob = try fixture.git(["rev-parse", "HEAD:src/part3/deeper0/file3.txt"], in: "repo")
        let loose = source.mirror.appending(path: "objects/\(blob.prefix(2))/\(blob.dropFirst(2))")
        chmod(loose.path, 0o644)
        // A well-formed object of the same size under the blob's id: only its hash gives it away.
        let forged = try runProcess(
            URL(filePath: "/usr/bin/python3"),
            ["-c", "import sys, zlib; d = b'line one of 3\\nline TWO\\n'; open(sys.argv[1], 'wb').write(zlib.compress(b'blob %d\\0' % len(d) + d))",
             loose.path])
        try #require(forged.status == 0, "\(forged.stderr)")
        let workspace = fixture.root.appending(path: "by-pipeline")
        try source.checkout(sha: sha, into: workspace, submodules: false, credentials: noCredentials)
        #expect(try String(contentsOf: workspace.appending(path: "src/part3/deeper0/file3.txt"), encoding: .utf8) == "line one of 3\nline two\n")
    }

    @Test func aBlobDamagedAfterTheFetchIsFetchedAgain() throws {
        let sha = try makeRepository(count: 20, attributes: nil)
        let source = GitSource(url: fixture.root.appending(path: "repo").path, cache: cache.url)
        _ = try source.resolve(sha: sha, ref: nil, branch: "main", credentials: noCredentials)
        // The repository is not packed, so the mirror's copy of this blob is a loose object file.
        let blob = try fixture.git(["rev-parse", "HEAD:src/part3/deeper0/file3.txt"], in: "repo")
        let loose = source.mirror.appending(path: "objects/\(blob.prefix(2))/\(blob.dropFirst(2))")
        #expect(FileManager.default.fileExists(atPath: loose.path))
        chmod(loose.path, 0o644)
        try Data("not zlib at all".utf8).write(to: loose)
        let workspace = fixture.root.appending(path: "by-pipeline")
        try source.checkout(sha: sha, into: workspace, submodules: false, credentials: noCredentials)
        #expect(try String(contentsOf: workspace.appending(path: "src/part3/deeper0/file3.txt"), encoding: .utf8) == "line one of 3\nline two\n")
    }
}
