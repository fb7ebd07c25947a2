import ArgumentParser
import Foundation
import Runner
import StageContract

/// Opens the state database of the workspace, for the commands that read or write runs.
enum StateAccess {
    static func open(_ workspace: Workspace) throws(LoadError) -> StateStore {
        try workspace.prepareHome()
        do {
            return try StateStore(home: workspace.home)
        } catch {
            // Locked, full or read-only: the state cannot be written (74), not a mistake in what was asked (2).
            let kind: LoadError.Kind = DatabaseError.cannotWrite.contains(error.code & 0xff) ? .unwritable : .environment
            throw LoadError(kind, "cannot open the state database in \(workspace.home.path): \(error)")
        }
    }

    /// Who runs this command: the operating-system user, or the signed-in server user a `pipeline serve` started
    /// it for (`PIPELINE_STARTED_BY`; like every local identity, unverified when set by hand).
    static var currentUser: String {
        if let starter = ProcessInfo.processInfo.environment["PIPELINE_STARTED_BY"], !starter.isEmpty { return starter }
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? "unknown"
    }

    /// Run `id`, or refuses naming what exists.
    static func run(_ id: Int, in store: StateStore) throws -> RunRecord {
        guard let run = try store.run(id) else {
            let latest = try store.runs(limit: 1).first.map { "; the latest is run \($0.id)" } ?? "; there are no runs yet"
            throw LoadError(.definition, "there is no run \(id)\(latest)")
        }
        return run
    }
}

extension Error {
    /// Reports any error as the CLI does and gives its exit code: a LoadError or a refusal is the user's to fix
    /// (2, or 3 for a busy environment), anything else is ours (70).
    func reported() -> ExitCode {
        switch self {
        case let error as LoadError: return error.report()
        case let refusal as RunSession.Refusal:
            FileHandle.standardError.write(Data("error: \(refusal)\n".utf8))
            if case .busy = refusal { return Exit.busy }
            if case .awaitingApproval = refusal { return Exit.busy }
            return Exit.cancelled
        case is RecordingFailure, is LeaseLost, is RunFolderDamaged:
            // The run's state could not be kept (or is not this process's to keep): each says what and why.
            FileHandle.standardError.write(Data("error: \(self)\n".utf8))
            return Exit.notRecorded
        case let refusal as OwnershipRefusal:
            FileHandle.standardError.write(Data("error: \(refusal)\n".utf8))
            return refusal.owned ? Exit.busy : Exit.badInput
        case let error as DatabaseError where error.code == DatabaseError.unknownValue:
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            return Exit.badInput
        case let error as DatabaseError where error.code > 0 && DatabaseError.cannotWrite.contains(error.code & 0xff):
            FileHandle.standardError.write(Data("error: cannot write the state database: \(error); free space or fix PIPELINE_HOME's permissions, then try again\n".utf8))
            return Exit.notRecorded
        case let exit as ExitCode: return exit
        default:
            FileHandle.standardError.write(Data("internal error: \(self)\nThis is a bug in pipeline; please report it with this message.\n".utf8))
            return Exit.internalError
        }
    }
}
