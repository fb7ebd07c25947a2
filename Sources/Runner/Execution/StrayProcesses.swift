import Foundation
import StageContract

/// Finds the processes of a run by the marker in their environment, wherever they went (a new session, a
/// re-parented grandchild), so none outlives its run.
public enum StrayProcesses {
    /// The variable every stage process carries: `RUN_MARKER.TOKEN` for the run and the fencing token of the
    /// owner that started it.
    public static let runMarkerVariable = StageVariables.runMarker
    /// The variable every stage process carries: `RUN_MARKER/STAGE/ATTEMPT` for one attempt of one stage.
    public static let stageMarkerVariable = StageVariables.stageMarker

    /// The processes whose environment has `variable=value`, except this one.
    public static func find(variable: String, value: String) -> [pid_t] {
        let wanted = Array("\(variable)=\(value)".utf8)
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }  // no /proc: no way to find any
        var found: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry), pid != me,
                let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ")
            else { continue }
            if environ.split(separator: 0, omittingEmptySubsequences: true).contains(where: { Array($0) == wanted }) {
                found.append(pid)
            }
        }
        return found
    }

    /// The marker the stage processes of one owner of a run carry.
    public static func ownerMarker(run marker: String, fence: Int) -> String { "\(marker).\(fence)" }

    /// Kills (SIGKILL) every process that an owner of the run with `marker` older than token `fence` started (and
    /// processes from before owners had tokens); returns how many there were.
    @discardableResult
    public static func killRun(marker: String, before fence: Int) -> Int {
        let prefix = Array("\(runMarkerVariable)=\(marker)".utf8)
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }  // no /proc: no way to find any
        var killed = 0
        for entry in entries {
            guard let pid = pid_t(entry), pid != me, let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            for variable in environ.split(separator: 0, omittingEmptySubsequences: true) where variable.starts(with: prefix) {
                let rest = variable.dropFirst(prefix.count)
                let older = rest.isEmpty || (rest.first == UInt8(ascii: ".") && (Int(String(decoding: rest.dropFirst(), as: UTF8.self)) ?? 0) < fence)
                if older {
                    Foundation.kill(pid, SIGKILL)
                    killed += 1
                }
            }
        }
        return killed
    }

    /// Kills (SIGKILL) every process carrying `variable=value`; returns how many there were.
    @discardableResult
    public static func kill(variable: String, value: String) -> Int {
        let pids = find(variable: variable, value: value)
        for pid in pids { Foundation.kill(pid, SIGKILL) }
        return pids.count
    }
}
