import Foundation

/// The process that owns a run: its host, PID and start time (boot id and clock ticks since boot), so that a
/// reused PID or a reboot is never taken for the owner.
public struct RunOwner: Sendable, Equatable, CustomStringConvertible {
    /// The host name.
    public let host: String
    /// The process id.
    public let pid: Int32
    /// `BOOT_ID:PID_NAMESPACE:START_TICKS` of the process, as `/proc` says.
    public let started: String

    /// An owner.
    public init(host: String, pid: Int32, started: String) {
        self.host = host
        self.pid = pid
        self.started = started
    }

    /// This process.
    public static var current: RunOwner {
        RunOwner(host: ProcessIdentity.hostName, pid: getpid(), started: ProcessIdentity.started(getpid()) ?? "")
    }

    /// `pid 123 on host`.
    public var description: String { "pid \(pid) on \(host)" }
}

/// What `/proc` says about processes of this host.
public enum ProcessIdentity {
    /// This host's name.
    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// The id of the running boot of this host.
    public static let bootID: String = {
        // Without it, liveness across reboots falls back to the lease's expiry (see `OwnerLiveness`).
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown-boot"
    }()

    /// The inode of this process's PID namespace: processes in another one (a container with the host's name but
    /// its own process list) cannot see each other's PIDs.
    public static let pidNamespace: String = {
        var buffer = [CChar](repeating: 0, count: 128)
        let count = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard count > 0 else { return "0" }
        let text = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(text.filter(\.isNumber))
    }()

    /// `BOOT_ID:PID_NAMESPACE:START_TICKS` of a running process of this host, as this process sees it; nil when
    /// there is no such process or it is a zombie (it has ended; only its parent has not collected it yet).
    public static func started(_ pid: Int32) -> String? {
        // An unreadable stat is a process that has gone (or was never there): what nil means.
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "PID (COMM) ": state is field 3, starttime field 22 (proc(5)); COMM may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return "\(bootID):\(pidNamespace):\(fields[19])"
    }
}

/// Whether the owner of a run is still there.
public enum OwnerLiveness {
    /// Whether the owner recorded for a run is provably gone: on this host, its process has ended (or its PID now
    /// belongs to another process, or the host rebooted); on another host, its lease has expired (it can be fenced:
    /// every write it makes after that is refused). A stopped (SIGSTOP) or slow process on this host is alive.
    public static func isProvablyGone(
        host: String?, pid: Int?, started: String?, leaseExpiresAt: Double?, now: Double = Date().timeIntervalSince1970,
        here: String = ProcessIdentity.hostName, processStarted: (Int32) -> String? = ProcessIdentity.started
    ) -> Bool {
        guard let pid, pid > 0 else { return true }
        if let host, host != here {
            guard let leaseExpiresAt else { return true }
            return leaseExpiresAt < now
        }
        guard let started, !started.isEmpty else {
            // A record from before owners had a start time: the PID alone.
            return processStarted(Int32(pid)) == nil
        }
        let parts = started.split(separator: ":")
        if parts.count == 3, parts[1] != ProcessIdentity.pidNamespace {
            // Another PID namespace on this host: its PIDs cannot be looked up from here, so only the lease can tell.
            guard let leaseExpiresAt else { return true }
            return leaseExpiresAt < now
        }
        return processStarted(Int32(pid)) != started
    }

    /// Why the owner of `run` counts as gone, in a few words.
    public static func whyGone(_ run: RunRecord) -> String {
        guard let owner = run.owner, owner.host != ProcessIdentity.hostName else {
            return "runner \(run.owner?.description ?? "pid \(run.pid ?? 0)") is gone"
        }
        return "runner \(owner) let its lease expire\(run.leaseExpiresAt.map { " at \($0)" } ?? "") and is fenced"
    }

    /// Whether the owner of `run` (queued or running) is still there.
    public static func isAlive(_ run: RunRecord) -> Bool {
        !isProvablyGone(
            host: run.owner?.host, pid: run.pid, started: run.owner?.started,
            leaseExpiresAt: run.leaseExpiresAt?.timeIntervalSince1970)
    }
}

/// Ownership of a run: the fencing token its owner's writes carry. A newer owner has a larger token, and every
/// write with an older one is refused.
public struct RunLease: Sendable, Equatable {
    /// The run.
    public let run: Int
    /// The fencing token.
    public let fence: Int
    /// Who holds it.
    public let owner: RunOwner
    /// How long a lease lasts without renewal, in seconds: 30, or `PIPELINE_LEASE_SECONDS` (at least 2).
    public static let duration: Double = {
        guard let text = ProcessInfo.processInfo.environment["PIPELINE_LEASE_SECONDS"], let value = Double(text) else { return 30 }
        return max(2, value)
    }()

    /// How often an owner renews its lease: a quarter of it, at most every 2 s.
    public static var renewalInterval: Double { min(2, duration / 4) }
}

/// The run is owned by someone else now: this process must stop acting on it.
public struct LeaseLost: Error, CustomStringConvertible, Sendable {
    /// The run.
    public let run: Int
    /// Who holds it now, or what happened to it.
    public let detail: String

    /// One line saying so.
    public var description: String {
        "this runner no longer owns run \(run) (\(detail)); it stopped its stages and records nothing more"
    }
}

/// Why ownership of a run was not given; nothing changed.
public struct OwnershipRefusal: Error, CustomStringConvertible, Sendable {
    /// The run, as it stood.
    public let run: RunRecord
    /// One line saying why, and what to do.
    public let description: String
    /// Whether another live process owns the run (rather than the run being in a state that cannot be continued).
    public let owned: Bool
}
