import CSpawn
import Foundation

/// A stage's child process: the leader of its own process group, killed with the runner if the runner dies.
final class StageProcess: Sendable {
    let pid: pid_t
    /// The stage server that forked it, which reports its end; nil for a process this one started.
    private let server: StageServer?

    private init(pid: pid_t, server: StageServer? = nil) {
        self.pid = pid
        self.server = server
    }

    /// Starts `executable` with stdout and stderr on the write ends of two new pipes, whose read ends it returns.
    static func start(
        executable: String, arguments: [String], environment: [String: String], directory: String
    ) throws -> (process: StageProcess, stdout: Int32, stderr: Int32) {
        try withPipes { devNull, stdout, stderr in
            let argv = ([executable] + arguments).map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                argv.forEach { free($0) }
                envp.forEach { free($0) }
            }
            var pid: pid_t = 0
            let code = pipeline_spawn(executable, argv, envp, directory, devNull, stdout, stderr, &pid)
            guard code == 0 else { throw SpawnError(executable: executable, directory: directory, code: code) }
            return StageProcess(pid: pid)
        }
    }

    /// Starts built-in stage `stage` of the run in `folder` as a child of `server`, like `start`; nil when the
    /// server is gone.
    static func start(
        stage: String, folder: String, on server: StageServer, environment: [String: String], directory: String
    ) throws -> (process: StageProcess, stdout: Int32, stderr: Int32)? {
        do {
            return try withPipes { devNull, stdout, stderr in
                guard let pid = try server.launch(
                    folder: folder, stage: stage, directory: directory, environment: environment,
                    stdin: devNull, stdout: stdout, stderr: stderr)
                else { throw ServerGone() }
                return StageProcess(pid: pid, server: server)
            }
        } catch is ServerGone {
            return nil
        }
    }

    private struct ServerGone: Error {}

    /// Makes the stdout and stderr pipes of a new stage process and opens /dev/null for its stdin; `body` starts
    /// the process with them. The write ends and /dev/null are closed afterwards; the read ends are returned, or
    /// closed when `body` throws.
    private static func withPipes(
        _ body: (_ devNull: Int32, _ stdout: Int32, _ stderr: Int32) throws -> StageProcess
    ) throws -> (process: StageProcess, stdout: Int32, stderr: Int32) {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard pipeline_pipe(&out) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        guard pipeline_pipe(&err) == 0 else {
            close(out[0])
            close(out[1])
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            close(out[1])
            close(err[1])
            close(devNull)
        }
        do {
            return (try body(devNull, out[1], err[1]), out[0], err[0])
        } catch {
            close(out[0])
            close(err[0])
            throw error
        }
    }

    /// Sends `signal` to the whole process group (the stage and everything it started).
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for the process to end; the exit status, or 128 + the signal that ended it.
    func wait() -> Int32 {
        if let server { return server.wait(pid) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 255 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// A stage program that could not start.
struct SpawnError: Error, CustomStringConvertible {
    let executable: String
    let directory: String
    let code: Int32

    var description: String {
        "cannot start \(executable) in \(directory): \(String(cString: strerror(code)))"
    }
}

/// Set-up of a stage's own process.
public enum StageProcessSetup {
    /// Makes stdout line-buffered, so the stage log shows stdout and stderr lines in the order they were written.
    public static func lineBufferedOutput() {
        pipeline_line_buffered_stdout()
    }
}

/// Processes that outlive the command that starts them (a run continued after an approval, runs started by hooks).
public enum DetachedProcess {
    /// Starts `executable` with `arguments` in a session of its own, its output appended to `log`; returns its pid.
    @discardableResult
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String], log: URL) throws -> Int32 {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        let pid = pipeline_spawn_detached(executable, argv, envp, log.path)
        guard pid > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return pid
    }
}
