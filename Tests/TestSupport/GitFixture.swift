import CSpawn
import Foundation

/// Real repositories for the tests, made with the git command line (the product itself only uses libgit2).
public final class GitFixture: @unchecked Sendable {
    /// The folder holding the repositories.
    public let folder = TemporaryDirectory("pipeline-git")
    /// Its URL.
    public var root: URL { folder.url }

    /// An empty fixture.
    public init() {}

    /// Runs git in `directory` (relative to the fixture), failing the test's setup if git fails.
    @discardableResult
    public func git(_ arguments: [String], in directory: String) throws -> String {
        let result = try runProcess(
            URL(filePath: "/usr/bin/git"),
            ["-c", "user.name=Alice Example", "-c", "user.email=alice@example.com", "-c", "protocol.file.allow=always",
             "-c", "init.defaultBranch=main"] + arguments,
            in: root.appending(path: directory))
        guard result.status == 0 else {
            throw NSError(domain: "git", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: "git \(arguments): \(result.stderr)"])
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A library repository and an application repository that uses it as a submodule (by relative URL), with
    /// an executable file, a symlink, nested folders, a `staging` branch, tags, and a second commit on main.
    public func makeApplication() throws {
        try FileManager.default.createDirectory(at: root.appending(path: "lib"), withIntermediateDirectories: true)
        try git(["init", "-q"], in: "lib")
        folder.write("lib/lib.txt", "library one\n")
        try git(["add", "."], in: "lib")
        try git(["commit", "-qm", "library one"], in: "lib")

        try FileManager.default.createDirectory(at: root.appending(path: "app"), withIntermediateDirectories: true)
        try git(["init", "-q"], in: "app")
        folder.write("app/deep/er/file.txt", "hello\n")
        folder.write("app/run.sh", "#!/bin/sh\necho run\n")
        chmod(root.appending(path: "app/run.sh").path, 0o755)
        try FileManager.default.createSymbolicLink(atPath: root.appending(path: "app/link").path, withDestinationPath: "deep/er/file.txt")
        try git(["submodule", "add", "-q", "../lib", "vendor/lib"], in: "app")
        try git(["add", "-A"], in: "app")
        try git(["commit", "-qm", "first commit"], in: "app")
        try git(["branch", "staging"], in: "app")
        try git(["tag", "v1"], in: "app")
        try git(["tag", "-a", "v1-annotated", "-m", "annotated"], in: "app")
        folder.write("app/deep/er/file.txt", "hello again\n")
        try git(["commit", "-qam", "second commit"], in: "app")
    }

    /// The full SHA of `revision`.
    public func sha(_ revision: String, in repository: String = "app") throws -> String {
        try git(["rev-parse", revision], in: repository)
    }
}

extension ServerProcess {
    /// git daemon serving the repositories under `root` on a free loopback port (`git://127.0.0.1:PORT/NAME`),
    /// accepting connections when this returns.
    public static func gitDaemon(serving root: URL) throws -> (server: ServerProcess, port: Int) {
        let port = freePort()
        let daemon = try ServerProcess(
            "/usr/lib/git-core/git-daemon",
            ["--base-path=\(root.path)", "--export-all", "--listen=127.0.0.1", "--port=\(port)", "--reuseaddr"])
        guard waitForPort(port) else { throw POSIXError(.ECONNREFUSED) }
        return (daemon, port)
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            _ = bind(fd, $0, length)
            _ = getsockname(fd, $0, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A background server process, killed when the test is done with it.
///
/// Started with posix_spawn rather than Foundation's Process: servers such as sshd close every descriptor they
/// inherit, which Foundation takes for the process having exited, and it then blocks in waitpid for good.
public final class ServerProcess: @unchecked Sendable {
    /// The server's process id.
    public let pid: pid_t

    /// The pipe its stdout goes to, whose read end stays open while it runs.
    private let stdout: Pipe?

    /// Starts `executable` with `arguments`, `environment` added to ours, its stdout to `stdout` (else discarded).
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], stdout: Pipe? = nil) throws {
        pid = try spawn(executable, arguments, environment: environment, output: stdout.map { .descriptor($0.fileHandleForWriting.fileDescriptor) } ?? .discard)
        if let stdout { try? stdout.fileHandleForWriting.close() }  // the child has its own; EOF comes when it goes
        self.stdout = stdout
    }

    deinit {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

extension ServerProcess {
    /// A Python server given as source, which prints its port first.
    public static func python(_ source: String) -> PortServer {
        let output = Pipe()
        let server = try? ServerProcess("/usr/bin/python3", ["-c", source], stdout: output)
        return PortServer(server: server, output: output)
    }

    /// One of the project's server scripts (`runner/dev/NAME`), which prints its port first.
    public static func script(_ name: String, _ arguments: [String], environment: [String: String] = [:]) -> PortServer {
        let output = Pipe()
        let server = try? ServerProcess(
            Project.root.appending(path: "runner/dev/\(name)").path, arguments, environment: environment, stdout: output)
        return PortServer(server: server, output: output)
    }
}

/// A server that prints the port it listens on as its first line.
public final class PortServer: @unchecked Sendable {
    let server: ServerProcess?
    let output: Pipe

    init(server: ServerProcess?, output: Pipe) {
        self.server = server
        self.output = output
    }

    /// The port it printed.
    public func port() throws -> Int {
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard server != nil, let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw POSIXError(.ECONNREFUSED)
        }
        return port
    }
}

/// Where a spawned process's stdout goes (stderr goes along with it to a file, else to /dev/null).
enum SpawnOutput {
    case discard
    case descriptor(Int32)
    case file(String)
}

/// posix_spawn with stdin from /dev/null and the signal mask and dispositions reset (a test thread may block
/// SIGTERM, and a server that inherited that could not be stopped).
func spawn(_ executable: String, _ arguments: [String], environment: [String: String], output: SpawnOutput) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    switch output {
    case .discard:
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    case .descriptor(let fd):
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    case .file(let path):
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    // Nothing else of ours leaks in: a server holding another test's pipe keeps that test waiting for an EOF that
    // comes only when the server goes, and the server's own test may be waiting for a thread the first one holds
    // (a CI run hung so until its time ran out). A server writing to our pipe needs its read end open for as long
    // as it runs, or its next write kills it (SIGPIPE): ServerProcess keeps the pipe.
    _ = pipeline_spawn_actions_closefrom(&actions, 3)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard code == 0 else { throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO) }
    return pid
}

/// Waits until something accepts connections on `port`.
public func waitForPort(_ port: Int, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return false
}

extension ServerProcess {
    /// `pipeline serve ARGS` (or another server that prints its URL on its first line), with that URL; waits up to
    /// 180 s (loading a pipeline can take a cold compile). Blocks: call it on a thread of its own.
    public static func printingURL(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> (ServerProcess, String) {
        let output = Pipe()
        let process = try ServerProcess(executable, arguments, environment: environment, stdout: output)
        var text = ""
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline, !text.contains("\n") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let range = text.range(of: "http://127.0.0.1:[0-9]+", options: .regularExpression) else {
            throw ServerStartError(description: "the server printed no URL: \(text)")
        }
        return (process, String(text[range]))
    }
}

/// A server that did not say where it listens.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}
