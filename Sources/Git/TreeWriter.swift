import CGit2
import Foundation
import Hashing
import Synchronization

/// Writes a commit's tree into an empty folder, several files at once.
///
/// libgit2's `git_checkout_tree` writes one file at a time and, for every file, looks its attributes up through
/// `realpath` of each folder above it. A run's checkout is simpler than a checkout into a working tree: the folder
/// is empty and there is no index, so this writes the files itself: folders first, then the files and symbolic
/// links from one shared list by a few threads, each with its own handle on the mirror (libgit2 objects are not
/// shared across threads). Content goes through libgit2's filters (end-of-line conversion, `ident`), with the
/// attributes of the commit being written, whenever any attributes or `core.autocrlf` could change it.
///
/// Every blob is checked against its id, as libgit2 checks every object it reads, but with OpenSSL's SHA-1 (the
/// CPU's SHA instructions) instead of libgit2's collision-detecting one, which took a quarter of the checkout:
/// libgit2's own check is off while the files are written. Collision detection matters where objects come in,
/// and the fetch's indexer still does it; here the question is only whether the mirror still holds what was
/// fetched.
struct TreeWriter {
    /// One thing in the tree: a file, a symbolic link or a submodule's commit.
    struct Entry: Sendable {
        /// Its path from the top of the tree, `/`-separated.
        let path: TreePath
        let oid: git_oid
        let mode: git_filemode_t
    }

    /// Every folder (parents before children) and every other entry of a tree.
    struct Listing {
        var folders: [TreePath] = []
        var entries: [Entry] = []
        var hasAttributes = false
    }

    let repository: Repository
    let commit: git_oid

    /// Writes the tree of `commit` into `folder`, which must be empty; returns its submodule entries.
    func write(tree: OpaquePointer, into folder: URL) throws -> [Entry] {
        let listing = try Self.list(tree)
        let root = TreePath(folder.path)
        // Modes as git records them (0755 folders and executables, 0644 files), whatever the process's umask: an
        // image built from the checkout records them, and the same tree must build the same image on every host.
        for relative in listing.folders {
            guard mkdir(relative.under(root), 0o755) == 0 || errno == EEXIST, chmod(relative.under(root), 0o755) == 0 else {
                throw Self.failure("creating folder \(relative)")
            }
        }
        let files = listing.entries.filter { $0.mode != GIT_FILEMODE_COMMIT }
        let submodules = listing.entries.filter { $0.mode == GIT_FILEMODE_COMMIT }
        for submodule in submodules {
            // As git leaves a submodule it has not initialised: an empty folder.
            guard mkdir(submodule.path.under(root), 0o777) == 0 || errno == EEXIST else {
                throw Self.failure("creating folder \(submodule.path)")
            }
        }
        let filtered = listing.hasAttributes || Self.attributesOutsideTheTree(repository)
        let workers = min(Self.defaultWorkers, max(1, files.count / 64))
        let work = SharedWork(count: files.count)
        _ = pipeline_git_set_strict_hash_verification(0)
        defer { _ = pipeline_git_set_strict_hash_verification(1) }
        let mirror = repository.path.path
        let commit = commit
        DispatchQueue.concurrentPerform(iterations: workers) { index in
            // The first worker uses the caller's handle (the caller waits meanwhile); the others open their own.
            let handle: OpaquePointer?
            var opened: OpaquePointer?
            if index == 0 {
                handle = nil
            } else {
                guard git_repository_open_bare(&opened, mirror) == 0 else {
                    work.fail(GitError(call: "git_repository_open(\(mirror))", code: -1))
                    return
                }
                handle = opened
            }
            defer { git_repository_free(opened) }
            let writer = FileWriter(root: root, filtered: filtered, commit: commit)
            while let next = work.take() {
                do {
                    try writer.write(files[next], with: handle ?? repository.handle)
                } catch {
                    work.fail(error)
                    return
                }
            }
        }
        if let error = work.error { throw error }
        return submodules
    }

    /// Threads that write: the processors, at most 8 (past that the file system is the limit); fewer for small
    /// trees (one per 64 files), where opening another handle on the mirror costs more than it saves.
    static var defaultWorkers: Int { min(ProcessInfo.processInfo.activeProcessorCount, 8) }

    /// The tree's folders and entries, in tree order, with every name checked as git checks it.
    static func list(_ tree: OpaquePointer) throws -> Listing {
        final class Collector {
            var listing = Listing()
            var refused: TreePath?
        }
        let collector = Collector()
        let result = withExtendedLifetime(collector) {
            git_tree_walk(tree, GIT_TREEWALK_PRE, { root, entry, payload in
                let collector = Unmanaged<Collector>.fromOpaque(payload!).takeUnretainedValue()
                let name = TreePath(cString: git_tree_entry_name(entry)!)
                let path = TreePath(cString: root!).appending(name)
                guard TreeWriter.isSafe(name) else {
                    collector.refused = path
                    return -1
                }
                let mode = git_tree_entry_filemode(entry)
                switch mode {
                case GIT_FILEMODE_TREE:
                    collector.listing.folders.append(path)
                case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK, GIT_FILEMODE_COMMIT:
                    if name == TreePath(".gitattributes") { collector.listing.hasAttributes = true }
                    collector.listing.entries.append(Entry(path: path, oid: git_tree_entry_id(entry).pointee, mode: mode))
                default:
                    collector.refused = path
                    return -1
                }
                return 0
            }, Unmanaged.passUnretained(collector).toOpaque())
        }
        if let refused = collector.refused {
            throw GitError(call: "checkout", message: "the tree has an entry git would not check out: '\(refused)'")
        }
        try check("git_tree_walk", result)
        return collector.listing
    }

    /// Whether a tree entry's name is one git would write: not empty, `.`, `..`, `.git` in any case, and without
    /// `/`.
    static func isSafe(_ name: TreePath) -> Bool {
        let text = name.description
        return !name.bytes.isEmpty && text != "." && text != ".." && text.lowercased() != ".git"
            && !name.bytes.contains(CChar(UInt8(ascii: "/")))
    }

    /// Whether attributes from outside the tree (the mirror's `info/attributes`, `core.attributesFile`, the
    /// user's or the system's attributes file) or `core.autocrlf` could change what a file holds once written.
    static func attributesOutsideTheTree(_ repository: Repository) -> Bool {
        let files = FileManager.default
        if files.fileExists(atPath: repository.path.appending(path: "info/attributes").path) { return true }
        var config: OpaquePointer?
        guard git_repository_config_snapshot(&config, repository.handle) == 0 else { return true }
        defer { git_config_free(config) }
        var autocrlf: Int32 = 0
        let autocrlfResult = git_config_get_bool(&autocrlf, config, "core.autocrlf")
        if autocrlfResult == 0 && autocrlf != 0 { return true }
        if autocrlfResult != 0 && autocrlfResult != GIT_ENOTFOUND.rawValue { return true }  // "input", or unreadable
        var path = git_buf()
        defer { git_buf_dispose(&path) }
        if git_config_get_path(&path, config, "core.attributesfile") == 0 { return true }
        let environment = ProcessInfo.processInfo.environment
        let configHome = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { $0 + "/.config" }
        if let configHome, files.fileExists(atPath: configHome + "/git/attributes") { return true }
        return files.fileExists(atPath: "/etc/gitattributes")
    }

    private static func failure(_ doing: String) -> GitError {
        GitError(call: "checkout", message: "\(doing): \(String(cString: strerror(errno)))")
    }
}

/// The list of files shared by the writing threads: each takes the next one until none are left or one failed.
private final class SharedWork: Sendable {
    private let count: Int
    private let next = Atomic<Int>(0)
    private let firstError = Mutex<(any Error)?>(nil)

    init(count: Int) {
        self.count = count
    }

    func take() -> Int? {
        guard firstError.withLock({ $0 == nil }) else { return nil }
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return index < count ? index : nil
    }

    func fail(_ error: any Error) {
        firstError.withLock { if $0 == nil { $0 = error } }
    }

    var error: (any Error)? { firstError.withLock { $0 } }
}

/// Writes single files and links of one tree; used by one thread.
private struct FileWriter {
    let root: TreePath
    let filtered: Bool
    let commit: git_oid

    func write(_ entry: TreeWriter.Entry, with repository: OpaquePointer) throws {
        var oid = entry.oid
        var blob: OpaquePointer?
        try check("git_blob_lookup(\(entry.path))", git_blob_lookup(&blob, repository, &oid))
        defer { git_blob_free(blob) }
        let content = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))
        try verify(content, entry)
        let path = entry.path.under(root)
        if entry.mode == GIT_FILEMODE_LINK {
            // The target as the bytes git holds, which need not be UTF-8.
            let target = content.map { CChar(bitPattern: $0) } + [0]
            guard symlink(target, path) == 0 else { throw failure("linking", entry.path) }
            return
        }
        let mode: mode_t = entry.mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0o755 : 0o644
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("creating", entry.path) }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw failure("setting the mode of", entry.path) }
        if filtered {
            var options = git_blob_filter_options()
            git_blob_filter_options_init(&options, UInt32(GIT_BLOB_FILTER_OPTIONS_VERSION))
            // The same filters git_checkout_tree applies, binary or not, with the attributes of the commit itself.
            options.flags = GIT_BLOB_FILTER_ATTRIBUTES_FROM_COMMIT.rawValue
            options.attr_commit_id = commit
            var buffer = git_buf()
            defer { git_buf_dispose(&buffer) }
            try check("git_blob_filter(\(entry.path))", git_blob_filter(&buffer, blob, entry.path.cString, &options))
            try writeAll(fd, buffer.ptr, buffer.size, entry.path)
        } else {
            try writeAll(fd, content.baseAddress, content.count, entry.path)
        }
    }

    /// Checks that `content` is the blob `entry` names; a mismatch means the mirror is damaged.
    private func verify(_ content: UnsafeRawBufferPointer, _ entry: TreeWriter.Entry) throws {
        let digest = SHA1()
        digest.update(Array("blob \(content.count)\u{0}".utf8))
        digest.update(content)
        let computed = digest.finish()
        let expected = withUnsafeBytes(of: entry.oid.id) { Array($0) }
        guard computed == expected else {
            throw GitError(
                call: "checkout",
                message: "the mirror's blob for \(entry.path) does not match its id \(Resolver.hex(entry.oid)) (it hashes to \(computed.hexString))",
                damaged: true)
        }
    }

    private func writeAll(_ fd: Int32, _ start: UnsafeRawPointer?, _ count: Int, _ name: TreePath) throws {
        guard var pointer = start, count > 0 else { return }
        var left = count
        while left > 0 {
            let written = Glibc.write(fd, pointer, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("writing", name)
            }
            left -= written
            pointer += written
        }
    }

    private func failure(_ doing: String, _ name: TreePath) -> GitError {
        GitError(call: "checkout", message: "\(doing) \(name): \(String(cString: strerror(errno)))")
    }
}

/// A path as git stores it: bytes, not necessarily UTF-8 (a tree from an old repository may hold Latin-1 names),
/// handed to the system calls as they are and shown with unreadable bytes replaced.
struct TreePath: Sendable, Equatable, CustomStringConvertible {
    /// The bytes, without a terminating NUL.
    let bytes: [CChar]

    init(_ text: String) {
        bytes = Array(text.utf8CString.dropLast())
    }

    init(cString: UnsafePointer<CChar>) {
        bytes = Array(UnsafeBufferPointer(start: cString, count: strlen(cString)))
    }

    private init(bytes: [CChar]) {
        self.bytes = bytes
    }

    /// This path with `name` after it (the tree walk's roots end with `/` already).
    func appending(_ name: TreePath) -> TreePath {
        TreePath(bytes: bytes + name.bytes)
    }

    /// `root/self`, NUL-terminated, for a system call.
    func under(_ root: TreePath) -> [CChar] {
        root.bytes + [CChar(UInt8(ascii: "/"))] + bytes + [0]
    }

    /// The path NUL-terminated, for libgit2.
    var cString: [CChar] { bytes + [0] }

    var description: String {
        String(decoding: bytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
