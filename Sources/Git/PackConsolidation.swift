import CGit2
import Foundation

/// Keeps a mirror's pack files few.
///
/// libgit2 writes every fetch into a pack of its own and, unlike git, never repacks: a mirror fetched at the start
/// of every run would gather thousands of packs, and every object lookup would search them one by one. Once there
/// are more than `limit`, the small packs are rolled into one, as `git repack --geometric=2 -d` does: afterwards
/// each pack is at least twice the size of all smaller ones together, so the big pack of the first clone is
/// written again only when the history has doubled. Runs with the mirror locked; the new pack is complete on disk
/// before any old one is removed.
enum PackConsolidation {
    /// More packs than this and the small ones are rolled up.
    static let limit = 16

    /// One pack of the mirror.
    struct Pack {
        /// The path without `.pack` / `.idx`.
        let base: String
        let size: Int
    }

    /// Rolls the mirror's small packs into one when it has more than `limit`; returns how many packs it removed.
    @discardableResult
    static func run(on repository: Repository, limit: Int = limit) throws -> Int {
        let folder = repository.path.appending(path: "objects/pack").path
        let packs = try Self.packs(in: folder)
        guard packs.count > limit else { return 0 }
        let merged = Self.toMerge(packs)
        guard merged.count >= 2 else { return 0 }

        var builder: OpaquePointer?
        try check("git_packbuilder_new", git_packbuilder_new(&builder, repository.handle))
        defer { git_packbuilder_free(builder) }
        for pack in merged {
            for var oid in try Self.objects(inIndex: pack.base + ".idx") {
                try check("git_packbuilder_insert", git_packbuilder_insert(builder, &oid, nil))
            }
        }
        try check("git_packbuilder_write", git_packbuilder_write(builder, folder, 0, nil, nil))
        let written = folder + "/pack-" + String(cString: git_packbuilder_name(builder))
        let files = FileManager.default
        // A multi-pack index would name packs that are gone; libgit2 reads the packs' own indexes without one.
        try? files.removeItem(atPath: folder + "/multi-pack-index")
        for pack in merged where pack.base != written {
            for suffix in [".idx", ".rev", ".bitmap", ".mtimes", ".promisor", ".pack"] {
                try? files.removeItem(atPath: pack.base + suffix)
            }
        }
        return merged.count
    }

    /// The mirror's packs (those with an index and no `.keep`), smallest first.
    static func packs(in folder: String) throws -> [Pack] {
        let files = FileManager.default
        let names = try files.contentsOfDirectory(atPath: folder)
        let present = Set(names)
        return names.filter { $0.hasPrefix("pack-") && $0.hasSuffix(".pack") }.compactMap { name in
            let stem = String(name.dropLast(5))
            guard present.contains(stem + ".idx"), !present.contains(stem + ".keep"),
                let size = (try? files.attributesOfItem(atPath: folder + "/" + name))?[.size] as? Int
            else { return nil }
            return Pack(base: folder + "/" + stem, size: size)
        }.sorted { $0.size < $1.size }
    }

    /// The smallest packs to roll together so that every pack left is at least twice the size of all smaller
    /// ones together (the rolled-up pack counting as one of them).
    static func toMerge(_ packs: [Pack]) -> [Pack] {
        var count = 0
        var smaller = 0
        for (index, pack) in packs.enumerated() {
            if index > 0 && pack.size < 2 * smaller { count = index + 1 }
            smaller += pack.size
        }
        return Array(packs.prefix(count))
    }

    /// The object ids a version 2 pack index lists.
    static func objects(inIndex path: String) throws -> [git_oid] {
        let data = try Data(contentsOf: URL(filePath: path), options: .alwaysMapped)
        let header: [UInt8] = [0xFF, 0x74, 0x4F, 0x63, 0, 0, 0, 2]
        guard data.count >= 8 + 256 * 4, Array(data.prefix(8)) == header else {
            throw GitError(call: "reading \(path)", message: "not a version 2 pack index", damaged: true)
        }
        let count = data.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 8 + 255 * 4, as: UInt32.self))) }
        let start = 8 + 256 * 4
        guard data.count >= start + count * 20 else {
            throw GitError(call: "reading \(path)", message: "the index is cut short", damaged: true)
        }
        return data.withUnsafeBytes { bytes in
            (0..<count).map { index in
                var oid = git_oid()
                withUnsafeMutableBytes(of: &oid.id) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(start + index * 20)..<(start + index * 20 + 20)]))
                }
                return oid
            }
        }
    }
}
