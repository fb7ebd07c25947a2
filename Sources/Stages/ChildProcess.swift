import Foundation

/// Runs a tool (a builder) as a child of the stage: its output goes on to the stage log as it comes, and the last
/// lines are kept for the error message when it fails.
enum ChildProcess {
    struct Outcome {
        let status: Int32
        let tail: [String]
    }

    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil, environment: [String: String], keep: Int = 15) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(filePath: executable)
        process.arguments = arguments
        process.environment = environment
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? pipe.fileHandleForWriting.close()
        var tail: [String] = []
        var partial = Data()
        let reader = pipe.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            FileHandle.standardOutput.write(chunk)
            partial.append(chunk)
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: partial[partial.startIndex..<newline], as: UTF8.self)
                partial = Data(partial[partial.index(after: newline)...])
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { tail.append(line) }
                if tail.count > keep { tail.removeFirst() }
            }
        }
        if !partial.isEmpty { tail.append(String(decoding: partial, as: UTF8.self)) }
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, tail: Array(tail.suffix(keep)))
    }

    /// The full path of `name` on `PATH`, if it is there.
    static func find(_ name: String, environment: [String: String]) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for folder in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
