import Foundation

/// The local stand-ins for AWS (`runner/local-aws`), started once per test process and stopped when it exits.
public enum LocalAWS {
    private nonisolated(unsafe) static var homes: [URL] = []
    private static let lock = NSLock()

    /// The settings a shell would source from `local-aws.env` (endpoints, the deployer's keys, region, registry),
    /// of the stand-ins the tests share.
    public static let environment: [String: String] = start()

    /// Stand-ins of one test's own (no other test touches their services), stopped when the test process exits.
    public static func dedicated() -> [String: String] { start() }

    private static func start() -> [String: String] {
        let folder = FileManager.default.temporaryDirectory.appending(path: "pipeline-local-aws-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let log = folder.appending(path: "local-aws.log")
        let status = spawnAndWait(Project.root.appending(path: "runner/local-aws").path, ["start"], home: folder, log: log)
        precondition(status == 0, "runner/local-aws start failed: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        lock.withLock {
            if homes.isEmpty {
                atexit {
                    for home in LocalAWS.lock.withLock({ LocalAWS.homes }) {
                        _ = spawnAndWait(
                            Project.root.appending(path: "runner/local-aws").path, ["stop"], home: home,
                            log: home.appending(path: "stop.log"))
                        try? FileManager.default.removeItem(at: home)
                    }
                }
            }
            homes.append(folder)
        }
        let text = try! String(contentsOf: folder.appending(path: "local-aws.env"), encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst(7).split(separator: "=", maxSplits: 1)
            values[String(pair[0])] = String(pair[1])
        }
        return values
    }
}

/// Runs `executable` with its output in `log` and waits for it with waitpid. Foundation's Process would wait for
/// ever here: the servers the script leaves running inherit the descriptor it watches to notice the exit.
private func spawnAndWait(_ executable: String, _ arguments: [String], home: URL, log: URL) -> Int32 {
    guard let pid = try? spawn(executable, arguments, environment: ["PIPELINE_HOME": home.path], output: .file(log.path)) else {
        return -1
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xff
}
