import Foundation

/// The members of a tar archive (ustar, with GNU long names and pax `path`/`size` records), read without unpacking:
/// each regular file is a byte range of the archive, so a push sends it straight from there.
struct TarArchive {
    struct Member {
        let name: String
        let offset: UInt64
        let size: UInt64
    }

    let file: URL
    let members: [String: Member]

    init(_ file: URL) throws(ImageError) {
        self.file = file
        guard let handle = try? FileHandle(forReadingFrom: file) else { throw ImageError("cannot open \(file.path)") }
        defer { try? handle.close() }
        var members: [String: Member] = [:]
        var offset: UInt64 = 0
        var longName: String?
        var paxSize: UInt64?
        while true {
            guard (try? handle.seek(toOffset: offset)) != nil, let header = try? handle.read(upToCount: 512), header.count == 512 else {
                break
            }
            if header.allSatisfy({ $0 == 0 }) { break }
            let bytes = [UInt8](header)
            guard let size = Self.octal(bytes[124..<136]) else { throw ImageError("\(file.path) is not a tar archive (bad header at byte \(offset))") }
            let type = bytes[156]
            let dataOffset = offset + 512
            let entrySize = paxSize ?? size
            paxSize = nil
            var name = Self.string(bytes[0..<100])
            let prefix = Self.string(bytes[345..<500])
            if bytes[257..<262].elementsEqual("ustar".utf8), !prefix.isEmpty { name = prefix + "/" + name }
            switch type {
            case UInt8(ascii: "L"):
                longName = Self.read(handle, at: dataOffset, count: size).map { Self.string($0[...]) }
            case UInt8(ascii: "x"):
                let records = Self.read(handle, at: dataOffset, count: size).map { String(decoding: $0, as: UTF8.self) } ?? ""
                for record in records.split(separator: "\n") {
                    guard let space = record.firstIndex(of: " "), let equals = record.firstIndex(of: "=") else { continue }
                    let key = record[record.index(after: space)..<equals]
                    let value = String(record[record.index(after: equals)...])
                    if key == "path" { longName = value }
                    if key == "size" { paxSize = UInt64(value) }
                }
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                let path = Self.normalize(longName ?? name)
                members[path] = Member(name: path, offset: dataOffset, size: entrySize)
                longName = nil
            default:
                longName = nil
            }
            let stored = (type == UInt8(ascii: "x") || type == UInt8(ascii: "L")) ? size : entrySize
            offset = dataOffset + (stored + 511) / 512 * 512
        }
        self.members = members
    }

    /// The bytes of a (small) member.
    func contents(_ name: String) throws(ImageError) -> Data {
        guard let member = members[Self.normalize(name)] else { throw ImageError("\(file.path) has no \(name)") }
        guard let handle = try? FileHandle(forReadingFrom: file) else { throw ImageError("cannot open \(file.path)") }
        defer { try? handle.close() }
        guard let data = Self.read(handle, at: member.offset, count: member.size) else { throw ImageError("cannot read \(name) from \(file.path)") }
        return data
    }

    private static func read(_ handle: FileHandle, at offset: UInt64, count: UInt64) -> Data? {
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.read(upToCount: Int(count)), data.count == Int(count) else {
            return nil
        }
        return data
    }

    static func normalize(_ path: String) -> String {
        var path = path
        while path.hasPrefix("./") { path.removeFirst(2) }
        while path.hasPrefix("/") { path.removeFirst() }
        return path
    }

    private static func string(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func octal(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        if let first = bytes.first, first & 0x80 != 0 {
            return bytes.dropFirst().reduce(UInt64(first & 0x7f)) { $0 << 8 | UInt64($1) }
        }
        let text = string(bytes).trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? 0 : UInt64(text, radix: 8)
    }
}
