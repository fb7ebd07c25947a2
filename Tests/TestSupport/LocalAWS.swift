import Foundation

/// The local stand-ins for AWS (`runner/local-aws`), started once per test process and stopped when it exits.
public enum LocalAWS {
    private nonisolated(unsafe) static var home: URL?

    /// The settings a shell would source from `local-aws.env` (endpoints, the deployer's keys, region, registry).
    public static let environment: [String: String] = {
        let folder = FileManager.default.temporaryDirectory.appending(path: "pipeline-local-aws-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        home = folder
        let log = folder.appending(path: "local-aws.log")
        let status = spawnAndWait(Project.root.appending(path: "runner/local-aws").path, ["start"], home: folder, log: log)
        precondition(status == 0, "runner/local-aws start failed: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        atexit {
            guard let home = LocalAWS.home else { return }
            _ = spawnAndWait(
                Project.root.appending(path: "runner/local-aws").path, ["stop"], home: home,
                log: home.appending(path: "stop.log"))
            try? FileManager.default.removeItem(at: home)
        }
        let text = try! String(contentsOf: folder.appending(path: "local-aws.env"), encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst(7).split(separator: "=", maxSplits: 1)
            values[String(pair[0])] = String(pair[1])
        }
        return values
    }()
}

/// Runs `executable` with its output in `log` and waits for it with waitpid. Foundation's Process would wait for
/// ever here: the servers the script leaves running inherit the descriptor it watches to notice the exit.
private func spawnAndWait(_ executable: String, _ arguments: [String], home: URL, log: URL) -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let environment = ProcessInfo.processInfo.environment.merging(["PIPELINE_HOME": home.path]) { _, new in new }
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    // A test thread may block SIGTERM; the servers must not inherit that, or they could not be stopped.
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
    var pid: pid_t = 0
    guard posix_spawn(&pid, executable, &actions, &attributes, argv, envp) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xff
}
