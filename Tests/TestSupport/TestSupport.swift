import Foundation
import Runner

/// Where the package and its build live, seen from a running test.
public enum Project {
    /// The package's root folder.
    public static let root: URL = {
        var url = URL(filePath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appending(path: "Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    /// The build folder the running tests were built into (`.build/debug`).
    public static let buildDirectory: URL = {
        let executable = DSLLibrary.currentExecutable ?? URL(filePath: CommandLine.arguments[0])
        var folder = executable.deletingLastPathComponent()
        // The test binary lives in .build/debug/NAME.xctest on Linux; on macOS deeper inside the bundle.
        while !FileManager.default.fileExists(atPath: folder.appending(path: "pipeline").path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        return folder
    }()

    /// The `pipeline` executable of this build (`PIPELINE_TEST_EXECUTABLE` names another, e.g. an older build, to
    /// show that a test fails there).
    public static var executable: URL {
        ProcessInfo.processInfo.environment["PIPELINE_TEST_EXECUTABLE"].map { URL(filePath: $0) } ?? buildDirectory.appending(path: "pipeline")
    }

    /// The DSL library of this build.
    public static var dslLibrary: DSLLibrary {
        guard let library = DSLLibrary.find(in: buildDirectory) else {
            fatalError("libPipelineDSL.so is not in \(buildDirectory.path): run `swift build` before `swift test`")
        }
        return library
    }
}

/// A folder that disappears when the test is done with it.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The folder.
    public let url: URL

    /// Makes a new, empty folder.
    public init(_ prefix: String = "pipeline-test") {
        url = FileManager.default.temporaryDirectory.appending(path: "\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Makes the folder `url`, which goes when the test is done with it.
    public init(url: URL) {
        self.url = url
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// Writes `text` to `path` inside the folder, making folders on the way.
    @discardableResult
    public func write(_ path: String, _ text: String) -> URL {
        let file = url.appending(path: path)
        try! FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try! text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Copies the reference platform's task-definition templates into `pipelines/taskdefs/`.
    public func copyReferenceTemplates() {
        let source = Project.root.appending(path: "pipelines/taskdefs")
        let target = url.appending(path: "pipelines/taskdefs")
        try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try! FileManager.default.copyItem(at: source, to: target)
    }
}

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    /// The exit status.
    public let status: Int32
    /// Everything it wrote to stdout.
    public let stdout: String
    /// Everything it wrote to stderr.
    public let stderr: String
}

/// Runs `executable` with `arguments` in `directory`, with `environment` added to ours, and waits for it.
public func runProcess(
    _ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]
) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes while the child runs so neither can fill up and stall it.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessOutput(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// `runProcess` from an async test: the wait happens on a thread of its own, never on one of the concurrency pool's
/// few threads (two on a two-core machine). Two async tests each waiting there for a child once held both, and every
/// other suite's awaits (an in-process server's handlers, a health probe) stalled until CI's time ran out.
public func runProcess(
    _ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]
) async throws -> ProcessOutput {
    let result: Result<ProcessOutput, any Error> = await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(returning: Result { try runProcess(executable, arguments, in: directory, environment: environment) as ProcessOutput })
        }
    }
    return try result.get()
}

/// A test CA and a server certificate for `localhost` and 127.0.0.1 signed by it, made with the openssl command.
public struct TestCertificates: Sendable {
    /// The folder holding `ca.pem`, `server.pem` and `server.key`.
    public let folder: URL
    /// The CA to trust.
    public var ca: String { folder.appending(path: "ca.pem").path }
    /// The server's certificate.
    public var certificate: String { folder.appending(path: "server.pem").path }
    /// The server's key.
    public var key: String { folder.appending(path: "server.key").path }

    /// Makes the certificates in `directory`.
    public init(in directory: TemporaryDirectory) throws {
        folder = directory.url
        directory.write("san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
             "-days", "2", "-extfile", "san.ext"],
        ] {
            let result = try runProcess(URL(filePath: "/usr/bin/openssl"), arguments, in: folder)
            guard result.status == 0 else {
                throw NSError(domain: "openssl", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: result.stderr])
            }
        }
    }
}
