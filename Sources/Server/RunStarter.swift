import Foundation
import Hummingbird
import PipelineDSL
import Runner
import StageContract

/// Starts and continues runs the way the CLI does, as its own processes (`pipeline run`, `pipeline resume`) in
/// sessions of their own: a server restart never stops them, and they take ownership through the same one function
/// as every command. The verified caller is handed on as the run's starter.
struct RunStarter: Sendable {
    let settings: ServerSettings
    let store: StateStore

    /// Starts a run of `environment` (at `sha`, or its branch's tip) for `caller`; returns its number once the run
    /// is recorded, or the command's own error when it ended before that.
    func start(environment: String, sha: String?, caller: Caller) async throws -> Int {
        var arguments = ["run", environment, "--trigger", "server"]
        if let sha { arguments += ["--sha", sha] }
        let (pid, log) = try spawn(arguments, caller: caller, environment: environment)
        return try await recorded(pid: pid, log: log, environment: environment, trigger: "server")
    }

    /// Rolls `service` in `environment` back to `to` (`pipeline rollback --yes`, with its own checks); returns the
    /// rollback run's number once it is recorded.
    func rollback(service: String, environment: String, to: String, caller: Caller) async throws -> Int {
        let (pid, log) = try spawn(["rollback", service, "--env", environment, "--to", to, "--yes"], caller: caller, environment: environment)
        return try await recorded(pid: pid, log: log, environment: environment, trigger: "rollback")
    }

    /// Runs `pipeline ARGS` for `caller` to its end (a dry run, say) and returns its status and output.
    func command(_ arguments: [String], caller: Caller) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(filePath: settings.executable)
        process.arguments = arguments
        process.environment = variables(startedBy: caller.name)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let ended = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { ended.continuation.yield($0.terminationStatus) }
        try process.run()
        let text = try await Task.detached { String(decoding: try output.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self) }.value
        var status: Int32 = 0
        for await code in ended.stream {
            status = code
            break
        }
        return (status, text)
    }

    /// The run `pid` records (found by its owner's pid and trigger), or the command's own error when it ended first.
    private func recorded(pid: Int32, log: URL, environment: String, trigger: String, patience: TimeInterval? = 120) async throws -> Int {
        // A cold plan compile takes tens of seconds on two cores; `patience` nil waits for as long as the process lives.
        let deadline = patience.map { Date().addingTimeInterval($0) } ?? .distantFuture
        while Date() < deadline {
            // Recorded, and its folder made (the run's page shows the stages of its plan), or already ended.
            if let run = try store.runs(environment: environment, limit: 20).first(where: { $0.pid == Int(pid) && $0.trigger == trigger }),
                FileManager.default.fileExists(atPath: RunFolder(root: store.runFolder(run.id)).planFile.path) || run.shownStatus.isFinal
            {
                reapLater(pid)
                return run.id
            }
            if let status = Self.reap(pid) {
                // The command refused (an unknown commit, a busy environment, a pipeline that does not load): what the
                // repository or the state holds stands against the request, which was well formed.
                throw HTTPError(.conflict, message: "the run did not start: \(Self.tail(log))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        reapLater(pid)
        throw HTTPError(.gatewayTimeout, message: "the run's process (pid \(pid)) has not recorded a run after 120 s; its output is in \(log.path)")
    }

    /// Continues run `id` (`pipeline resume`): refused by the command itself when the run cannot be continued.
    func resume(_ run: RunRecord, caller: Caller) async throws {
        let (pid, log) = try spawn(["resume", String(run.id)], caller: caller, environment: run.environment)
        // The command refuses at once (not continuable, owned elsewhere) or takes the run over: wait for either.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let status = Self.reap(pid) {
                if status == 0 || status == 4 { return }  // ended already: succeeded, or waits at a gate again
                if let now = try store.run(run.id), now.pid == Int(pid) { return }  // it ran, and the run ended as it did
                throw HTTPError(.conflict, message: "run \(run.id) was not continued: \(Self.tail(log))")
            }
            if let now = try store.run(run.id), now.pid == Int(pid), now.status.hasOwner {
                reapLater(pid)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        reapLater(pid)
    }

    /// Starts the run of a pushed commit (trigger `webhook`, one of the commit triggers) and returns at once: a
    /// forge waits 10 s for its delivery's answer, and a cold plan compile can take longer. The run's own
    /// checks (one run per environment and commit, the queue) apply; its output is in `serve/`.
    func startCommitRun(environment: String, sha: String, startedBy: String) throws -> (pid: Int32, log: URL) {
        try spawn(["run", environment, "--sha", sha, "--trigger", "webhook"], startedBy: startedBy, environment: environment)
    }

    /// The run a started process records, or the command's own words when it ended first (see `recorded`).
    /// Waits as long as the process lives (a cold compile or a slow fetch is no failure).
    func commitRun(pid: Int32, log: URL, environment: String) async throws -> Int {
        try await recorded(pid: pid, log: log, environment: environment, trigger: "webhook", patience: nil)
    }

    /// Continues an approved run in the background (as `pipeline approve --detach` does).
    func continueApproved(_ run: RunRecord, caller: Caller) throws {
        let (pid, _) = try spawn(["resume", String(run.id)], caller: caller, environment: run.environment)
        reapLater(pid)
    }

    private func spawn(_ arguments: [String], caller: Caller, environment: String) throws -> (Int32, URL) {
        try spawn(arguments, startedBy: caller.name, environment: environment)
    }

    /// The environment of a command the server starts: the server's own, less the forges' secrets, with the state
    /// folder, who asked, and the server's URL.
    private func variables(startedBy: String) -> [String: String] {
        var variables = settings.runEnvironment
        // The forges' secrets (webhook secrets, the GitHub token) are the server's alone: no stage sees them.
        for forge in settings.manifest.forges {
            for reference in [forge.webhookSecret, forge.token].compactMap({ $0 }) where reference.store == .environment {
                variables[reference.name] = nil
            }
        }
        variables["PIPELINE_HOME"] = settings.home.path
        variables["PIPELINE_STARTED_BY"] = startedBy
        // Notifications link to the run's pages here.
        if let url = settings.publicURL { variables["PIPELINE_SERVER_URL"] = url.absoluteString }
        return variables
    }

    private func spawn(_ arguments: [String], startedBy: String, environment: String) throws -> (Int32, URL) {
        var variables = variables(startedBy: startedBy)
        // Gates that know people by a variable know the starter by it too (never the server's own value).
        for stage in settings.manifest.stages[environment] ?? [] {
            if case .approval(let spec) = stage.spec, let name = spec.identityVariable { variables[name] = startedBy }
        }
        let folder = settings.home.appending(path: "serve")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let log = folder.appending(path: "\(arguments[0])-\(Int(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max)).log")
        let pid = try DetachedProcess.start(settings.executable, arguments, environment: variables, log: log)
        return (pid, log)
    }

    /// Removes the output files of commands started more than a week ago (each run keeps its own logs).
    static func removeOldLogs(home: URL, olderThan age: TimeInterval = 7 * 86400) {
        let folder = home.appending(path: "serve")
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        for file in files where file.pathExtension == "log" {
            let modified = (try? file.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? Date()
            if Date().timeIntervalSince(modified) > age { try? FileManager.default.removeItem(at: file) }  // one left behind is removed next time
        }
    }

    /// The exit status of `pid` if it has ended (and is reaped now).
    private static func reap(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Reaps `pid` whenever it ends (the run goes on without the server; this only keeps zombies away).
    private func reapLater(_ pid: Int32) {
        Task.detached {
            while Self.reap(pid) == nil {
                if kill(pid, 0) != 0 && errno == ESRCH { return }
                try? await Task.sleep(for: .seconds(1))  // cancellation only ends the watch early
            }
        }
    }

    /// The last lines of a command's output, for an error.
    private static func tail(_ log: URL) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""  // no output: say so below
        let lines = text.split(separator: "\n").suffix(6).joined(separator: " ")
        return lines.isEmpty ? "it printed nothing" : lines
    }
}
