import CSpawn
import Foundation
import Logging
import Synchronization

/// A run's stage server: `pipeline __stage-server RUN_FOLDER`, started once per run at its first built-in stage, which has
/// loaded the executable and its libraries already and forks a child per built-in stage (CSpawn's
/// stage_server.c). A new `pipeline` process costs about 18 ms of CPU before it does anything (some forty shared
/// libraries, the Swift runtime's relocations); a fork of the server costs a millisecond, on a machine whose cores
/// the stages share with what they deploy to. Each stage still runs in a process of its own, the leader of its own
/// process group, with its own descriptors, directory and environment, killed when the server (killed with the
/// runner) dies.
///
/// The server is the stage processes' parent, so it reports their ends: a reader thread takes its replies and
/// hands each to whoever waits for it. When the server cannot start or ends (killed), built-in stages start as
/// new processes again (`StageProcess.start`); stages it had started were killed with it and end with status 137.
/// `PIPELINE_STAGE_SERVER=off` starts every built-in stage as a new process.
final class StageServer: Sendable {
    /// The variable that turns the server off (`off`).
    static let variable = "PIPELINE_STAGE_SERVER"
    /// The server's argument.
    static let command = "__stage-server"

    private static let logger = Logger(label: "pipeline.run")

    /// What a caller waits for: a started child's pid (or -errno), or an exit status.
    private final class Waiter: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private let result = Mutex<Int32>(0)

        func resolve(_ value: Int32) {
            result.withLock { $0 = value }
            semaphore.signal()
        }

        /// The value, or nil when none came within `seconds`.
        func wait(seconds: Double) -> Int32? {
            guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
            return result.withLock { $0 }
        }
    }

    private struct State {
        /// Callers waiting for STARTED or FAILED, in the order their requests went out.
        var starting: [Waiter] = []
        /// Exit statuses nobody has asked for yet.
        var exited: [pid_t: Int32] = [:]
        /// Callers waiting for a child's end.
        var waiting: [pid_t: Waiter] = [:]
        /// The server has ended (or could not be reached): nothing more comes.
        var ended = false
        /// It was asked to end.
        var finishing = false
    }

    private let socket: Int32
    /// The server's pid.
    let pid: pid_t
    private let state = Mutex(State())
    /// Held while a request is queued and written, so that requests and their STARTED replies keep one order.
    private let sending = Mutex<Void>(())

    private init(socket: Int32, pid: pid_t) {
        self.socket = socket
        self.pid = pid
    }

    /// Starts the server with `environment` (the runner's, and the run's marker, by which a later owner finds
    /// and kills it as it does every process of the run); nil when it cannot start (then stages start as new
    /// processes, as they would without it).
    static func start(executable: String, runFolder: String, environment: [String: String]) -> StageServer? {
        var ends: [Int32] = [-1, -1]
        guard pipeline_socketpair(&ends) == 0 else { return nil }
        let (mine, its) = (ends[0], ends[1])
        // The server is started by the thread that then reads its replies, for as long as it runs: a child started
        // with PR_SET_PDEATHSIG is killed when the thread that started it ends, not only the process.
        let started = DispatchSemaphore(value: 0)
        let result = Mutex<StageServer?>(nil)
        Thread.detachNewThread {
            let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
            let argv: [UnsafeMutablePointer<CChar>?] = ([executable, Self.command, runFolder] as [String]).map { strdup($0) } + [nil]
            let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            var pid: pid_t = 0
            let code = pipeline_spawn(executable, argv, envp, nil, its, devNull, STDERR_FILENO, &pid)
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            close(devNull)
            close(its)
            guard code == 0 else {
                close(mine)
                logger.debug("no stage server (\(String(cString: strerror(code)))): built-in stages start as new processes")
                started.signal()
                return
            }
            // A request that does not go out within the start limit (the server stopped with a full socket buffer)
            // fails with EAGAIN instead of holding every later launch up.
            var limit = timeval(tv_sec: Int(startLimit), tv_usec: 0)
            setsockopt(mine, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let server = StageServer(socket: mine, pid: pid)
            result.withLock { $0 = server }
            started.signal()
            server.readReplies()
        }
        started.wait()
        return result.withLock { $0 }
    }

    /// Starts `stage` of the run in `folder` in a new child of the server, in `directory` with `environment`
    /// and the given descriptors. Nil when the server is gone (start the stage as a new process instead); throws
    /// what kept the child from starting (its directory missing, fork failing).
    func launch(
        folder: String, stage: String, directory: String, environment: [String: String], stdin: Int32, stdout: Int32, stderr: Int32
    ) throws(SpawnError) -> pid_t? {
        var payload: [UInt8] = []
        for text in [directory, folder, stage] + environment.map({ "\($0.key)=\($0.value)" }) {
            payload.append(contentsOf: text.utf8)
            payload.append(0)
        }
        let waiter = Waiter()
        let sent: Int32 = sending.withLock { _ in
            guard state.withLock({ state -> Bool in
                guard !state.ended else { return false }
                state.starting.append(waiter)
                return true
            }) else { return EPIPE }
            let code = pipeline_stage_server_send(socket, payload, UInt32(payload.count), stdin, stdout, stderr)
            if code != 0 { abandon(because: "a stage could not be sent to it: \(String(cString: strerror(code)))") }
            return code
        }
        guard sent == 0 else { return nil }
        // A server that cannot fork within this long is stopped (SIGSTOP) or stuck: it is killed, with the stages
        // it forked, and the stage starts as a new process.
        guard let reply = waiter.wait(seconds: Self.startLimit) else {
            abandon(because: "it did not start a stage within \(Int(Self.startLimit)) s")
            return nil
        }
        if reply > 0 { return reply }
        if reply == -EPIPE && state.withLock({ $0.ended }) { return nil }
        if reply == -ENOTSUP {
            abandon(because: "it no longer has one thread, so it cannot fork safely")
            return nil
        }
        throw SpawnError(executable: "stage \(stage)", directory: directory, code: -reply)
    }

    /// Seconds a stage may take to be forked before the server is given up.
    static let startLimit = 10.0
    /// Seconds a stage process may be gone (ended, or a zombie) without the server reporting its end, before the
    /// server is given up.
    static let reportLimit = 5.0

    /// Waits for the end of `child`, which this server started: its exit status, or 128 + the signal that ended it.
    /// A server that stops reporting (stopped, stuck) cannot hold the run up: once the child has ended for
    /// `reportLimit` seconds unreported, the server is given up (killed, with every stage it forked) and the child's
    /// status is read from its zombie's /proc entry, which the server has not reaped; a child gone without a trace
    /// counts as killed (137).
    func wait(_ child: pid_t) -> Int32 {
        let waiter = Waiter()
        let known: Int32? = state.withLock { state in
            if let status = state.exited.removeValue(forKey: child) { return status }
            if state.ended { return 128 + SIGKILL }  // killed with the server (PR_SET_PDEATHSIG)
            state.waiting[child] = waiter
            return nil
        }
        if let known { return known }
        var endedSince: Date?
        while true {
            if let status = waiter.wait(seconds: 1) { return status }
            guard Self.ending(of: child) != nil else {
                endedSince = nil
                continue
            }
            let since = endedSince ?? Date()
            endedSince = since
            guard Date().timeIntervalSince(since) >= Self.reportLimit else { continue }
            // Answers this waiter too: with the status its unreaped process holds, else 137.
            abandon(because: "it did not report the end of stage process \(child) within \(Int(Self.reportLimit)) s")
        }
    }

    /// Nil while process `pid` runs; once it has ended, its status (exit status, or 128 + signal) when it is a
    /// zombie its parent has not reaped yet, else nil inside (gone).
    static func ending(of pid: pid_t) -> Int32?? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return .some(nil) }
        // After the command name in parentheses (which may hold anything): field 3 (the state) on; field 52 is
        // the exit status as waitpid gives it.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard let state = fields.first else { return nil }
        if state == "X" { return .some(nil) }  // dead: being reaped, its status no longer there
        guard state == "Z" else { return nil }
        guard fields.count > 49, let raw = Int32(fields[49].trimmingCharacters(in: .whitespacesAndNewlines)) else { return .some(nil) }
        return .some(raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f))
    }

    /// Gives the server up (it stopped answering, or says what cannot be read): the stages it forked that have ended
    /// get the status their unreaped processes still hold, then the server is killed, and the stages still running
    /// die with it (PR_SET_PDEATHSIG: 137).
    private func abandon(because problem: String) {
        let waiting = state.withLock { state in state.ended ? [:] : state.waiting }
        for (child, waiter) in waiting {
            if case .some(.some(let status)) = Self.ending(of: child) {
                if state.withLock({ $0.waiting.removeValue(forKey: child) }) != nil { waiter.resolve(status) }
            }
        }
        end(because: problem)
        kill(pid, SIGKILL)
    }

    /// Asks the server to end once the stages it started have (it ends when this end of the socket is closed for
    /// writing).
    func finish() {
        sending.withLock { _ in
            state.withLock { $0.finishing = true }
            _ = shutdown(socket, Int32(SHUT_WR))
        }
    }

    private func readReplies() {
        var reply: [Int32] = [0, 0, 0]
        while true {
            let code = pipeline_stage_server_reply(socket, &reply)
            guard code == 0 else {
                if code == EPIPE {
                    end(because: "it was killed or crashed")
                } else {
                    abandon(because: "its replies cannot be read: \(String(cString: strerror(code)))")
                }
                break
            }
            switch reply[0] {
            case PIPELINE_STAGE_STARTED, PIPELINE_STAGE_FAILED:
                let waiter: Waiter? = state.withLock { $0.starting.isEmpty ? nil : $0.starting.removeFirst() }
                waiter?.resolve(reply[0] == PIPELINE_STAGE_STARTED ? reply[1] : -reply[2])
            case PIPELINE_STAGE_EXITED:
                let waiter: Waiter? = state.withLock { state in
                    if let waiter = state.waiting.removeValue(forKey: reply[1]) { return waiter }
                    state.exited[reply[1]] = reply[2]
                    return nil
                }
                waiter?.resolve(reply[2])
            default:
                abandon(because: "it sent a reply of unknown kind \(reply[0])")
            }
            if state.withLock({ $0.ended }) { break }
        }
        // The server is gone, or killed just now: its pid is reaped here, as its parent is this process.
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        close(socket)
    }

    /// Marks the server ended: every caller waiting for it is answered (its children died with it).
    private func end(because problem: String) {
        let (starting, waiting, quiet) = state.withLock { state in
            defer {
                state.ended = true
                state.starting = []
                state.waiting = [:]
            }
            return (state.starting, state.waiting, state.ended || (state.finishing && state.waiting.isEmpty))
        }
        if !quiet {
            Self.logger.warning("the stage server (pid \(pid)) ended: \(problem); built-in stages start as new processes")
        }
        for waiter in starting { waiter.resolve(-EPIPE) }
        for waiter in waiting.values { waiter.resolve(128 + SIGKILL) }
    }
}
