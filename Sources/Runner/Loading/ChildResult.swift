import Foundation

/// Runs a short helper program (the compiler, a compiled pipeline) and waits for it.
struct ChildResult {
    let status: Int32
    /// stdout and stderr together, in the order they were written.
    let output: String

    /// Runs `executable` and collects what it prints.
    static func capture(_ executable: URL, arguments: [String]) throws -> ChildResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ChildResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Runs `executable` in `directory` with our stderr; its stdout goes to our stderr too when `stdoutToStderr`.
    static func run(_ executable: URL, arguments: [String], directory: URL, stdoutToStderr: Bool) throws -> Int32 {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        if stdoutToStderr { process.standardOutput = FileHandle.standardError }
        try process.run()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal { return 128 + process.terminationStatus }
        return process.terminationStatus
    }
}
