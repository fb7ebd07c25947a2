import CSpawn
import Foundation

/// Where stage output goes besides its log: the console, one chunk of whole lines at a time.
public protocol OutputSink: Sendable {
    /// Whole, masked lines of one stage, each ending in a newline.
    func stageOutput(stage: String, lines: UnsafeRawBufferPointer)
}

/// Reads a stage's stdout and stderr until both close, masks secrets, and writes each line with a timestamp and
/// its stream to the stage log, passing the lines on to a sink. Memory stays bounded whatever the stage prints.
/// Unchecked: `run()` is called once, on the one thread that reads the pipes; nothing else touches its state.
final class OutputPump: @unchecked Sendable {
    private let stage: String
    private let log: BufferedFile
    private let sink: (any OutputSink)?
    private var streams: [(fd: Int32, name: [UInt8], masking: MaskingStream, partial: [UInt8])]
    private let onLogFailure: @Sendable (String) -> Void
    private var reported = false

    /// The longest line kept whole; longer ones are cut into pieces of this size.
    static let maximumLine = 64 * 1024

    /// A pump; `onLogFailure` is told once, at once, when the log cannot be written.
    init(
        stage: String, stdout: Int32, stderr: Int32, log: BufferedFile, masker: SecretMasker, sink: (any OutputSink)?,
        onLogFailure: @escaping @Sendable (String) -> Void
    ) {
        self.onLogFailure = onLogFailure
        self.stage = stage
        self.log = log
        self.sink = sink
        streams = [
            (stdout, Array("out ".utf8), MaskingStream(masker: masker), []),
            (stderr, Array("err ".utf8), MaskingStream(masker: masker), []),
        ]
    }

    /// Pumps until both pipes are closed, then closes them.
    func run() {
        let bufferSize = 256 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var masked: [UInt8] = []
        masked.reserveCapacity(bufferSize + 1024)
        var open = [true, true]
        while open.contains(true) {
            var fds = streams.indices.map { pollfd(fd: open[$0] ? streams[$0].fd : -1, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in streams.indices where open[index] && fds[index].revents != 0 {
                let count = read(streams[index].fd, buffer, bufferSize)
                if count < 0 && errno == EINTR { continue }
                masked.removeAll(keepingCapacity: true)
                if count <= 0 {
                    streams[index].masking.finish(into: &masked)
                    emit(index, masked, final: true)
                    close(streams[index].fd)
                    open[index] = false
                    continue
                }
                streams[index].masking.feed(UnsafeRawBufferPointer(start: buffer, count: count), into: &masked)
                emit(index, masked, final: false)
            }
            // What was read is in the log before the next wait for output: `logs --follow` and a runner killed
            // with -9 lose nothing that was printed. A flood of output still costs few writes: each read is big.
            log.flush()
            if !reported, let problem = log.failureDescription {
                reported = true
                onLogFailure(problem)
            }
        }
        log.flush()
    }

    /// Splits `bytes` (after what was left of the last chunk) into lines and writes them.
    private func emit(_ index: Int, _ bytes: [UInt8], final: Bool) {
        var lines: [UInt8] = []
        let stamp = Timestamp.now()
        bytes.withUnsafeBytes { raw in
            var start = 0
            while start < raw.count {
                guard let newline = memchr(raw.baseAddress! + start, 0x0A, raw.count - start) else { break }
                let end = raw.baseAddress!.distance(to: UnsafeRawPointer(newline))
                let piece = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if streams[index].partial.isEmpty {
                    writeLine(piece, index: index, stamp: stamp, into: &lines)
                } else {
                    streams[index].partial.append(contentsOf: piece)
                    let whole = streams[index].partial
                    streams[index].partial.removeAll(keepingCapacity: true)
                    whole.withUnsafeBytes { writeLine($0, index: index, stamp: stamp, into: &lines) }
                }
                start = end + 1
            }
            if start < raw.count { streams[index].partial.append(contentsOf: raw[start...]) }
        }
        while streams[index].partial.count >= Self.maximumLine || (final && !streams[index].partial.isEmpty) {
            let cut = min(streams[index].partial.count, Self.maximumLine)
            let piece = Array(streams[index].partial.prefix(cut))
            streams[index].partial.removeFirst(cut)
            piece.withUnsafeBytes { writeLine($0, index: index, stamp: stamp, into: &lines) }
        }
        if let sink, !lines.isEmpty {
            lines.withUnsafeBytes { sink.stageOutput(stage: stage, lines: $0) }
        }
    }

    private func writeLine(_ line: UnsafeRawBufferPointer, index: Int, stamp: [UInt8], into lines: inout [UInt8]) {
        log.append(stamp)
        log.append(streams[index].name)
        log.append(line)
        log.append(0x0A)
        if sink != nil {
            lines.append(contentsOf: line)
            lines.append(0x0A)
        }
    }
}

/// `2026-11-26T00:52:27.123Z `, made once per chunk.
enum Timestamp {
    static func now() -> [UInt8] {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var time = spec.tv_sec
        var parts = tm()
        gmtime_r(&time, &parts)
        let text = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(spec.tv_nsec / 1_000_000))
        return Array(text.utf8)
    }
}

/// Appends to a file through a buffer, so that millions of short lines cost few system calls. A write that fails
/// (a full disk) is remembered in `failure`, and nothing more is written.
final class BufferedFile: @unchecked Sendable {  // used by one thread at a time: the pump, then the executor after it
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let capacity = 256 * 1024
    /// The path.
    let path: String
    /// The errno of the first write that failed.
    private(set) var failure: Int32?

    /// Opens `path` for appending, creating it readable by its owner only.
    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        buffer.reserveCapacity(capacity)
    }

    deinit {
        flush()
        close(fd)
    }

    func append(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { flush() }
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count >= capacity {
            flush()
            write(bytes)
            return
        }
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { flush() }
    }

    func append(_ byte: UInt8) {
        buffer.append(byte)
    }

    func append(text: String) {
        append(Array(text.utf8))
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func write(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += written
        }
    }

    /// What went wrong with the first write that failed, if one did.
    var failureDescription: String? {
        failure.map { "could not write \(path): \(String(cString: strerror($0)))" }
    }
}
