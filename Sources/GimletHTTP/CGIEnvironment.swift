/// The CGI environ of one request: every parameter the web server sent.
///
/// The raw `KEY=VALUE` bytes are kept in one buffer as they arrived; a value
/// becomes a `String` only when it is looked up, so the ~30 parameters nginx
/// sends cost one copy, not 60 string allocations and a hash table. A later
/// duplicate of a key wins, as with a dictionary.
///
/// ```swift
/// request.environ["REMOTE_ADDR"]
/// for (key, value) in request.environ { … }
/// ```
public struct CGIEnvironment: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    private var bytes: [UInt8] = []
    /// Start of each entry's key, its length, and its value's length (the value follows `=`).
    private var entries: [EntryLayout] = []

    /// An empty environ.
    public init() {}

    /// An environ from a dictionary (tests, other transports).
    public init(_ dictionary: [String: String]) {
        for (key, value) in dictionary { append(key: key, value: value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        for (key, value) in elements { append(key: key, value: value) }
    }

    /// Where one entry lies in a transport's byte buffer.
    public struct EntryLayout: Sendable {
        public var start: Int
        public var keyLength: Int
        public var valueLength: Int

        public init(start: Int, keyLength: Int, valueLength: Int) {
            self.start = start
            self.keyLength = keyLength
            self.valueLength = valueLength
        }
    }

    /// An environ over a transport's buffer of `KEY=VALUE` entries, with each
    /// entry's place already found; entries that do not fit the buffer are dropped.
    public init(storage: [UInt8], layout: [EntryLayout]) {
        bytes = storage
        let fits = { (entry: EntryLayout) in
            entry.start >= 0 && entry.keyLength >= 0 && entry.valueLength >= 0
                && entry.start + entry.keyLength + 1 + entry.valueLength <= storage.count
        }
        entries = layout.allSatisfy(fits) ? layout : layout.filter(fits)
    }

    /// Adds (or overrides) one parameter.
    public mutating func append(key: String, value: String) {
        let start = bytes.count
        bytes.append(contentsOf: key.utf8)
        bytes.append(UInt8(ascii: "="))
        bytes.append(contentsOf: value.utf8)
        entries.append(EntryLayout(start: start, keyLength: key.utf8.count, valueLength: value.utf8.count))
    }

    /// The value of `key`, if the server sent it (invalid UTF-8 repaired).
    public subscript(key: String) -> String? {
        guard let index = lastIndex(of: key) else { return nil }
        return value(at: index)
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// The keys, in the order they came (duplicates included).
    public var keys: [String] { entries.map { String(decoding: bytes[$0.start..<($0.start + $0.keyLength)], as: UTF8.self) } }

    /// The environ as a dictionary.
    public var dictionary: [String: String] {
        var result: [String: String] = [:]
        for (key, value) in self { result[key] = value }
        return result
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: String)> {
        entries.indices.lazy.map { index in
            let entry = entries[index]
            return (String(decoding: bytes[entry.start..<(entry.start + entry.keyLength)], as: UTF8.self), value(at: index))
        }.makeIterator()
    }

    public var description: String { dictionary.description }

    private func value(at index: Int) -> String {
        let entry = entries[index]
        let valueStart = entry.start + entry.keyLength + 1
        return String(decoding: bytes[valueStart..<(valueStart + entry.valueLength)], as: UTF8.self)
    }

    private func lastIndex(of key: String) -> Int? {
        // Spans: bounds-checked like arrays, without the array and string-view overhead per byte.
        let wanted = key.utf8.span
        let length = wanted.count
        guard length > 0 else { return nil }
        let first = wanted[0]
        let bytes = bytes.span
        let entries = entries.span
        var index = entries.count - 1
        while index >= 0 {
            let entry = entries[index]
            // Length and first byte rule out nearly every entry before a full compare.
            if entry.keyLength == length, bytes[entry.start] == first {
                var offset = 1
                while offset < length, bytes[entry.start + offset] == wanted[offset] { offset += 1 }
                if offset == length { return index }
            }
            index -= 1
        }
        return nil
    }
}
