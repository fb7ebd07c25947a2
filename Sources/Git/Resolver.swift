import CGit2
import Foundation

/// Finds commits in a repository by SHA (full or abbreviated) or by branch or tag.
struct Resolver {
    let repository: Repository

    func resolve(sha: String?, ref: String?, branch: String) throws -> ResolvedCommit {
        if let sha { return try commit(sha: sha) }
        return try commit(ref: ref ?? branch)
    }

    private func commit(sha: String) throws -> ResolvedCommit {
        let text = sha.lowercased()
        guard (4...40).contains(text.utf8.count), text.utf8.allSatisfy({ (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }) else { throw SourceError.invalidSHA(sha) }
        var oid = git_oid()
        try check("git_oid_fromstrn", git_oid_fromstrn(&oid, text, text.utf8.count))
        var object: OpaquePointer?
        let result = git_object_lookup_prefix(&object, repository.handle, &oid, text.utf8.count, GIT_OBJECT_ANY)
        if result == GIT_ENOTFOUND.rawValue { throw SourceError.unknownSHA(sha) }
        if result == GIT_EAMBIGUOUS.rawValue { throw SourceError.ambiguousSHA(sha, candidates: candidates(prefix: text)) }
        try check("git_object_lookup_prefix(\(sha))", result)
        defer { git_object_free(object) }
        let type = git_object_type(object)
        guard type == GIT_OBJECT_COMMIT else {
            throw SourceError.notACommit(sha, kind: String(cString: git_object_type2string(type)))
        }
        return try describe(git_object_id(object).pointee)
    }

    private func commit(ref name: String) throws -> ResolvedCommit {
        var object: OpaquePointer?
        var found = false
        for candidate in ["refs/heads/\(name)", "refs/tags/\(name)", name] where !found {
            var reference: OpaquePointer?
            guard git_reference_lookup(&reference, repository.handle, candidate) == 0 else { continue }
            defer { git_reference_free(reference) }
            let peeled = git_reference_peel(&object, reference, GIT_OBJECT_COMMIT)
            if peeled == 0 {
                found = true
            } else {
                // A branch or tag whose commit is missing: the mirror is damaged.
                let error = GitError(call: "git_reference_peel(\(candidate))", code: peeled)
                throw GitError(call: error.call, message: error.message, damaged: true)
            }
        }
        guard found, let object else { throw SourceError.unknownRef(name, known: referenceNames()) }
        defer { git_object_free(object) }
        return try describe(git_object_id(object).pointee)
    }

    /// The commit's facts; reading its tree too, so a damaged mirror shows up here.
    private func describe(_ id: git_oid) throws -> ResolvedCommit {
        var oid = id
        var commit: OpaquePointer?
        try check("git_commit_lookup", git_commit_lookup(&commit, repository.handle, &oid))
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try check("git_commit_tree", git_commit_tree(&tree, commit))
        git_tree_free(tree)
        let author = git_commit_author(commit).pointee
        let name = author.name.map { String(cString: $0) } ?? ""
        let email = author.email.map { String(cString: $0) } ?? ""
        let summary = git_commit_summary(commit).map { String(cString: $0) } ?? ""
        return ResolvedCommit(
            sha: Self.hex(oid), author: "\(name) <\(email)>",
            time: Date(timeIntervalSince1970: TimeInterval(git_commit_time(commit))), subject: summary)
    }

    /// Every object whose SHA starts with `prefix`, for an ambiguity message.
    private func candidates(prefix: String) -> [String] {
        var odb: OpaquePointer?
        guard git_repository_odb(&odb, repository.handle) == 0 else { return [] }
        defer { git_odb_free(odb) }
        final class Box { var found: [String] = []; let prefix: String; init(_ p: String) { prefix = p } }
        let box = Box(prefix)
        _ = git_odb_foreach(odb, { oid, payload in
            let box = Unmanaged<Box>.fromOpaque(payload!).takeUnretainedValue()
            let hex = Resolver.hex(oid!.pointee)
            if hex.hasPrefix(box.prefix) { box.found.append(hex) }
            return 0
        }, Unmanaged.passUnretained(box).toOpaque())
        return Array(Set(box.found)).sorted().map { candidate in
            var oid = git_oid()
            _ = git_oid_fromstr(&oid, candidate)
            var object: OpaquePointer?
            guard git_object_lookup(&object, repository.handle, &oid, GIT_OBJECT_ANY) == 0 else { return candidate }
            defer { git_object_free(object) }
            return "\(candidate) (\(String(cString: git_object_type2string(git_object_type(object)))))"
        }
    }

    private func referenceNames() -> [String] {
        var array = git_strarray()
        guard git_reference_list(&array, repository.handle) == 0 else { return [] }
        defer { git_strarray_dispose(&array) }
        return (0..<array.count).compactMap { array.strings[$0].map { String(cString: $0) } }
            .filter { $0.hasPrefix("refs/heads/") || $0.hasPrefix("refs/tags/") }
            .map { $0.replacingOccurrences(of: "refs/heads/", with: "").replacingOccurrences(of: "refs/tags/", with: "tag ") }
            .sorted()
    }

    static func hex(_ oid: git_oid) -> String {
        var oid = oid
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, 41, &oid)
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
