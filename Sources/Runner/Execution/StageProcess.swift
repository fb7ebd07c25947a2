import CSpawn
import Foundation

/// A stage's child process: the leader of its own process group, killed with the runner if the runner dies.
final class StageProcess: Sendable {
    let pid: pid_t

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `executable` with stdout and stderr on the write ends of two new pipes, whose read ends it returns.
    static func start(
        executable: String, arguments: [String], environment: [String: String], directory: String
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
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let code = pipeline_spawn(executable, argv, envp, directory, devNull, out[1], err[1], &pid)
        guard code == 0 else {
            close(out[0])
            close(err[0])
            throw SpawnError(executable: executable, directory: directory, code: code)
        }
        return (StageProcess(pid: pid), out[0], err[0])
    }

    /// Sends `signal` to the whole process group (the stage and everything it started).
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for the process to end; the exit status, or 128 + the signal that ended it.
    func wait() -> Int32 {
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
