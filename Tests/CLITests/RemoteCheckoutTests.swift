import Foundation
import Runner
import TestSupport
import Testing

/// A pipelines folder (outside any git repository) deploying from `repository`, with a checkout and a stage that
/// shows what it got.
private func project(repository: String) -> TemporaryDirectory {
    let project = TemporaryDirectory("pipeline-remote")
    project.write(
        "pipelines/Pipeline.swift",
        """
        import PipelineDSL

        Pipeline("app", repository: "\(repository)") {
            Environment("staging", branch: "staging", region: "us-east-1", cluster: "c")
            Checkout()
            Shell("look", "echo sha=$PIPELINE_SHA; cat deep/er/file.txt vendor/lib/lib.txt; test -x run.sh && echo executable")
        }
        """)
    return project
}

private func run(_ project: TemporaryDirectory, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
    try runProcess(
        Project.executable, arguments, in: project.url,
        environment: environment.merging(["PIPELINE_HOME": project.url.appending(path: ".pipeline").path]) { a, _ in a })
}

private func expectDeployed(_ result: ProcessOutput, sha: String, _ comment: String) {
    #expect(result.status == 0, "\(comment): \(result.stdout)\(result.stderr)")
    #expect(result.stdout.contains("[look] sha=\(sha)"), "\(comment)")
    #expect(result.stdout.contains("[look] hello\n[look] library one\n[look] executable"), "\(comment)")
}

/// Each talks to a real server on loopback: git daemon, git-http-backend behind HTTPS, sshd.
@Suite(.serialized) struct RemoteCheckoutTests {
    @Test func gitDaemonRemoteByShortSHAWithItsSubmodule() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let (daemon, port) = try ServerProcess.gitDaemon(serving: fixture.root)
        let sha = try fixture.sha("v1")
        let app = project(repository: "git://127.0.0.1:\(port)/app")
        expectDeployed(try run(app, ["run", "staging", "--sha", String(sha.prefix(7))]), sha: sha, "git://")
        let status = try run(app, ["status"])
        #expect(status.stdout.contains("commit \(sha) by Alice Example <alice@example.com>"))
        #expect(status.stdout.contains(": first commit"))
        let mirrors = try FileManager.default.contentsOfDirectory(atPath: app.url.appending(path: ".pipeline/cache/git").path)
        #expect(mirrors.filter { $0.hasSuffix(".git") }.count == 2, "\(mirrors)")
        _ = daemon
    }

    @Test func wrongInputChangesNothing() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let app = project(repository: fixture.root.appending(path: "app").path)
        let cases: [([String], String)] = [
            (["--sha", "0000000"], "no commit 0000000 in the repository"),
            (["--ref", "nope"], "no branch or tag 'nope' in the repository; it has main, staging, tag v1, tag v1-annotated"),
            (["--sha", try fixture.sha("HEAD:deep")], "is a tree, not a commit"),
        ]
        for (arguments, message) in cases {
            let result = try run(app, ["run", "staging"] + arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        let unreachable = project(repository: "git://127.0.0.1:\(freePort())/app")
        let refused = try run(unreachable, ["run", "staging"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("cannot fetch git://127.0.0.1:"))
        let badTimeout = try run(app, ["run", "staging"], environment: ["PIPELINE_GIT_TIMEOUT": "2m"])
        #expect(badTimeout.status == 2)
        #expect(badTimeout.stderr.contains("PIPELINE_GIT_TIMEOUT must be a number of seconds greater than 0 (e.g. 120), not '2m'"), "\(badTimeout.stderr)")
        for folder in [app, unreachable] {
            let state = try StateStore(home: folder.url.appending(path: ".pipeline"))
            #expect(try state.runs().isEmpty, "no run is recorded for refused input")
        }
    }

    @Test func httpsWithATokenThatNeverShows() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let folder = TemporaryDirectory("pipeline-tls")
        let tls = try TestCertificates(in: folder)

        let token = "tok-\(UUID().uuidString)"
        let server = ServerProcess.script(
            "git-http-server", [fixture.root.path, "--cert", tls.certificate, "--key", tls.key],
            environment: ["GIT_SERVER_TOKEN": token])
        let port = try server.port()
        let app = project(repository: "https://localhost:\(port)/app")
        let ca = ["SSL_CERT_FILE": tls.ca]
        let sha = try fixture.sha("staging")

        let deployed = try run(app, ["run", "staging"], environment: ca.merging(["PIPELINE_GIT_TOKEN": token]) { a, _ in a })
        expectDeployed(deployed, sha: sha, "https")
        var scanned = 0
        for file in FileManager.default.enumerator(atPath: app.url.path)!.compactMap({ $0 as? String })
        where !file.hasPrefix(".pipeline/cache/pipelines") {  // the compiler's module cache: large, and no run writes it
            guard let data = FileManager.default.contents(atPath: app.url.appending(path: file).path) else { continue }
            scanned += 1
            #expect(!String(decoding: data, as: UTF8.self).contains(token), "\(file) holds the token")
        }
        #expect(scanned > 5)
        #expect(!deployed.stdout.contains(token) && !deployed.stderr.contains(token))

        let anonymous = try run(app, ["run", "staging"], environment: ca)
        #expect(anonymous.status == 2)
        #expect(anonymous.stderr.contains("the remote asks for credentials: set PIPELINE_GIT_TOKEN"), "\(anonymous.stderr)")
        let wrong = try run(app, ["run", "staging"], environment: ca.merging(["PIPELINE_GIT_TOKEN": "wrong"]) { a, _ in a })
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("the remote refused the token for x-access-token"), "\(wrong.stderr)")
        let untrusted = try run(app, ["run", "staging"], environment: ["PIPELINE_GIT_TOKEN": token, "SSL_CERT_FILE": "/dev/null"])
        #expect(untrusted.status == 2)
        #expect(untrusted.stderr.contains("certificate"), "\(untrusted.stderr)")
        _ = server
    }

    @Test func sshWithAKeyFileAndACheckedHostKey() throws {
        let fixture = GitFixture()
        try fixture.makeApplication()
        let keys = TemporaryDirectory("pipeline-ssh")
        for name in ["host", "client"] {
            let result = try runProcess(
                URL(filePath: "/usr/bin/ssh-keygen"), ["-q", "-t", "ed25519", "-N", "", "-f", keys.url.appending(path: name).path])
            try #require(result.status == 0, "\(result.stderr)")
        }
        let port = freePort()
        keys.write("authorized_keys", try String(contentsOf: keys.url.appending(path: "client.pub"), encoding: .utf8))
        keys.write(
            "sshd_config",
            """
            ListenAddress 127.0.0.1
            Port \(port)
            HostKey \(keys.url.appending(path: "host").path)
            AuthorizedKeysFile \(keys.url.appending(path: "authorized_keys").path)
            PidFile \(keys.url.appending(path: "sshd.pid").path)
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            StrictModes no
            UsePAM no

            """)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let sshd = try ServerProcess("/usr/sbin/sshd", ["-D", "-e", "-f", keys.url.appending(path: "sshd_config").path])
        try #require(waitForPort(port), "sshd did not start")
        let hostKey = try String(contentsOf: keys.url.appending(path: "host.pub"), encoding: .utf8).split(separator: " ")
        keys.write("known_hosts", "[127.0.0.1]:\(port) \(hostKey[0]) \(hostKey[1])\n")
        let user = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        let app = project(repository: "ssh://\(user)@127.0.0.1:\(port)\(fixture.root.path)/app")
        let ssh = [
            "PIPELINE_GIT_SSH_KEY": keys.url.appending(path: "client").path,
            "PIPELINE_GIT_KNOWN_HOSTS": keys.url.appending(path: "known_hosts").path,
        ]
        expectDeployed(try run(app, ["run", "staging"], environment: ssh), sha: try fixture.sha("staging"), "ssh")
        let hashed = try runProcess(URL(filePath: "/usr/bin/ssh-keygen"), ["-H", "-f", keys.url.appending(path: "known_hosts").path])
        try #require(hashed.status == 0)
        #expect(try String(contentsOf: keys.url.appending(path: "known_hosts"), encoding: .utf8).hasPrefix("|1|"))
        expectDeployed(try run(app, ["run", "staging"], environment: ssh), sha: try fixture.sha("staging"), "ssh, hashed known_hosts")

        // Without a key file, the SSH agent is asked; without an agent either, the error says what to set.
        let socket = keys.url.appending(path: "agent.sock").path
        let agent = try ServerProcess("/usr/bin/ssh-agent", ["-D", "-a", socket])
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { Thread.sleep(forTimeInterval: 0.05) }
        let noKey = ssh.merging(["PIPELINE_GIT_SSH_KEY": "", "SSH_AUTH_SOCK": socket]) { _, new in new }
        let emptyAgent = try run(app, ["run", "staging"], environment: noKey)
        #expect(emptyAgent.status == 2)
        #expect(emptyAgent.stderr.contains("the remote refused every key of the SSH agent (SSH_AUTH_SOCK) for \(user)"), "\(emptyAgent.stderr)")
        let added = try runProcess(
            URL(filePath: "/usr/bin/ssh-add"), [keys.url.appending(path: "client").path], environment: ["SSH_AUTH_SOCK": socket])
        try #require(added.status == 0, "ssh-add: \(added.stderr)")
        expectDeployed(try run(app, ["run", "staging"], environment: noKey), sha: try fixture.sha("staging"), "ssh, key from the agent")
        let noAgent = try run(app, ["run", "staging"], environment: noKey.merging(["SSH_AUTH_SOCK": ""]) { _, new in new })
        #expect(noAgent.status == 2)
        #expect(noAgent.stderr.contains("set PIPELINE_GIT_SSH_KEY to a key file, or start an SSH agent"), "\(noAgent.stderr)")
        _ = agent

        keys.write("other_hosts", "[127.0.0.1]:\(port) ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
        let unknownHost = try run(
            app, ["run", "staging"], environment: ssh.merging(["PIPELINE_GIT_KNOWN_HOSTS": keys.url.appending(path: "other_hosts").path]) { _, new in new })
        #expect(unknownHost.status == 2)
        #expect(unknownHost.stderr.contains("host key of 127.0.0.1 is not in"), "\(unknownHost.stderr)")
        _ = sshd
    }
}
