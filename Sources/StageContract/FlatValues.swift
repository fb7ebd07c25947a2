/// Codable to and from flat `KEY=VALUE` outputs: a struct of String, Bool, Int and Double properties (optional or
/// not) is one key per property, in declaration order; nil is no key. Nothing nested: an output is what a shell
/// stage can read as one variable per key.
public enum FlatValues {
    /// The keys and values of `value`, in declaration order.
    public static func encode<Value: Encodable>(_ value: Value) throws -> [(String, String)] {
        let encoder = FlatEncoder()
        try value.encode(to: encoder)
        return encoder.storage.pairs
    }

    /// A `Value` read from `values`; a missing or malformed key throws `DecodingError` naming it.
    public static func decode<Value: Decodable>(_ type: Value.Type, from values: [String: String]) throws -> Value {
        try Value(from: FlatDecoder(values: values))
    }

    /// What a `DecodingError` from `decode` says, in a sentence.
    public static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "no '\(key.stringValue)' output"
        case DecodingError.dataCorrupted(let context), DecodingError.typeMismatch(_, let context):
            context.debugDescription
        default: "\(error)"
        }
    }
}

private final class FlatStorage {
    var pairs: [(String, String)] = []
}

private struct FlatEncoder: Encoder {
    let storage = FlatStorage()
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Container<Key>(storage: storage))
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { fatalError("stage outputs are flat: one key per property") }
    func singleValueContainer() -> any SingleValueEncodingContainer { fatalError("stage outputs are flat: one key per property") }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: FlatStorage
        var codingPath: [any CodingKey] { [] }

        func put(_ value: String, _ key: Key) { storage.pairs.append((key.stringValue, value)) }
        mutating func encodeNil(forKey key: Key) throws {}
        mutating func encode(_ value: String, forKey key: Key) throws { put(value, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(String(value), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(String(value), key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(String(value), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            throw EncodingError.invalidValue(
                value, .init(codingPath: [key], debugDescription: "stage outputs are strings, numbers and booleans, not \(T.self)"))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            fatalError("stage outputs are flat: one key per property")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            fatalError("stage outputs are flat: one key per property")
        }
        mutating func superEncoder() -> any Encoder { fatalError("stage outputs are flat: one key per property") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { fatalError("stage outputs are flat: one key per property") }
    }
}

private struct FlatDecoder: Decoder {
    let values: [String: String]
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Container<Key>(values: values))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [], debugDescription: "stage outputs are flat"))
    }
    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "stage outputs are flat"))
    }

    struct Container<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let values: [String: String]
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { values.keys.compactMap(Key.init(stringValue:)) }

        func contains(_ key: Key) -> Bool { values[key.stringValue] != nil }
        func decodeNil(forKey key: Key) throws -> Bool { values[key.stringValue] == nil }

        private func raw(_ key: Key) throws -> String {
            guard let value = values[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [key], debugDescription: "no '\(key.stringValue)' output"))
            }
            return value
        }
        private func parsed<T>(_ key: Key, _ what: String, _ parse: (String) -> T?) throws -> T {
            let text = try raw(key)
            guard let value = parse(text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: [key], debugDescription: "the output '\(key.stringValue)' is '\(text)', not \(what)"))
            }
            return value
        }

        func decode(_ type: String.Type, forKey key: Key) throws -> String { try raw(key) }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try parsed(key, "true or false") { Bool($0) } }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try parsed(key, "a whole number") { Int($0) } }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try parsed(key, "a number") { Double($0) } }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            throw DecodingError.typeMismatch(T.self, .init(codingPath: [key], debugDescription: "stage outputs are strings, numbers and booleans"))
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw DecodingError.typeMismatch(Any.self, .init(codingPath: [key], debugDescription: "stage outputs are flat"))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch(Any.self, .init(codingPath: [key], debugDescription: "stage outputs are flat"))
        }
        func superDecoder() throws -> any Decoder { FlatDecoder(values: values) }
        func superDecoder(forKey key: Key) throws -> any Decoder { FlatDecoder(values: values) }
    }
}
