/// The CGI environ of one request: every parameter the web server sent.
///
/// The raw `KEY=VALUE` bytes are kept in one buffer as they arrived; a value
/// becomes a `String` only when it is looked up, so the ~30 parameters nginx
/// sends cost one copy, not 60 string allocations and a hash table. A later
/// duplicate of a key wins, as with a dictionary, except for request
/// headers (`HTTP_*`): a header the client sent on several lines reaches us
/// as several parameters (nginx 1.22 passes each line), and their values are
/// joined in order, as RFC 9110 §5.3 says (`Cookie` lines with `; `, as one
/// `Cookie` header would carry them; others with `, `).
///
/// ```swift
/// request.environ["REMOTE_ADDR"]
/// for (key, value) in request.environ { … }
/// ```
public struct CGIEnvironment: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    private var bytes: [UInt8] = []
    /// Where the entries lie.
    private var entries = Layout()

    /// An empty environ.
    public init() {}

    /// An environ from a dictionary (tests, other transports).
    public init(_ dictionary: [String: String]) {
        for (key, value) in dictionary { append(key: key, value: value) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        for (key, value) in elements { append(key: key, value: value) }
    }

    /// Where the entries lie in a transport's byte buffer: for each, the start
    /// of its key, the key's length and the value's length (the value follows
    /// one separator byte, `=` or NUL).
    ///
    /// Three integers per entry in one `[Int]`: an array of a struct of ours
    /// would cost a generic metadata lookup each time one is allocated.
    /// Public only as SPI, so that the transports' loop over ~30 entries
    /// inlines `append` (no `package` body is: see ARCHITECTURE.md).
    @_spi(GimletInlined) public struct Layout: Sendable {
        @usableFromInline var values: [Int] = []

        /// An empty layout with room for `capacity` entries.
        @inlinable
        public init(capacity: Int = 0) {
            values.reserveCapacity(capacity * 3)
        }

        /// Adds an entry.
        @inlinable
        public mutating func append(start: Int, keyLength: Int, valueLength: Int) {
            values.append(start)
            values.append(keyLength)
            values.append(valueLength)
        }

        /// The number of entries.
        package var count: Int { values.count / 3 }

        /// Whether there are no entries.
        package var isEmpty: Bool { values.isEmpty }

        func start(_ index: Int) -> Int { values[index * 3] }
        func keyLength(_ index: Int) -> Int { values[index * 3 + 1] }
        func valueLength(_ index: Int) -> Int { values[index * 3 + 2] }

        func fits(_ index: Int, in size: Int) -> Bool {
            let start = start(index), key = keyLength(index), value = valueLength(index)
            guard start >= 0, key >= 0, value >= 0, start <= size else { return false }
            // Subtractions only: no overflow whatever the numbers.
            let room = size - start
            return key < room && value <= room - key - 1
        }
    }

    /// An environ over a transport's buffer of `KEY=VALUE` entries, with each
    /// entry's place already found; entries that do not fit the buffer are dropped.
    package init(storage: [UInt8], layout: Layout) {
        bytes = storage
        let all = 0..<layout.count
        if all.allSatisfy({ layout.fits($0, in: storage.count) }) {
            entries = layout
        } else {
            for index in all where layout.fits(index, in: storage.count) {
                entries.append(start: layout.start(index), keyLength: layout.keyLength(index), valueLength: layout.valueLength(index))
            }
        }
    }

    /// Adds (or overrides) one parameter.
    public mutating func append(key: String, value: String) {
        let start = bytes.count
        bytes.append(contentsOf: key.utf8)
        bytes.append(UInt8(ascii: "="))
        bytes.append(contentsOf: value.utf8)
        entries.append(start: start, keyLength: key.utf8.count, valueLength: value.utf8.count)
    }

    /// The value of `key`, if the server sent it (invalid UTF-8 repaired).
    public subscript(key: String) -> String? {
        guard let last = lastIndex(of: key, before: entries.count) else { return nil }
        guard key.utf8.starts(with: "HTTP_".utf8), var earlier = lastIndex(of: key, before: last) else {
            return value(at: last)
        }
        var values = [value(at: last), value(at: earlier)]
        while let next = lastIndex(of: key, before: earlier) {
            values.append(value(at: next))
            earlier = next
        }
        return values.reversed().joined(separator: key == "HTTP_COOKIE" ? "; " : ", ")
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// The keys, in the order they came (duplicates included).
    public var keys: [String] { (0..<entries.count).map(key(at:)) }

    /// The environ as a dictionary.
    public var dictionary: [String: String] {
        var result: [String: String] = [:]
        for (key, value) in self { result[key] = value }
        return result
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: String)> {
        (0..<entries.count).lazy.map { index in (key(at: index), value(at: index)) }.makeIterator()
    }

    public var description: String { dictionary.description }

    private func key(at index: Int) -> String {
        let start = entries.start(index)
        return String(decoding: bytes[start..<(start + entries.keyLength(index))], as: UTF8.self)
    }

    private func value(at index: Int) -> String {
        let valueStart = entries.start(index) + entries.keyLength(index) + 1
        return String(decoding: bytes[valueStart..<(valueStart + entries.valueLength(index))], as: UTF8.self)
    }

    /// The last entry named `key` among the first `end` entries.
    private func lastIndex(of key: String, before end: Int) -> Int? {
        // Spans: bounds-checked like arrays, without the array and string-view overhead per byte.
        let wanted = key.utf8.span
        let length = wanted.count
        guard length > 0 else { return nil }
        let first = wanted[0]
        let bytes = bytes.span
        let layout = entries.values.span
        var index = end - 1
        while index >= 0 {
            let start = layout[index * 3]
            // Length and first byte rule out nearly every entry before a full compare.
            if layout[index * 3 + 1] == length, bytes[start] == first, Self.matches(bytes, start, wanted) { return index }
            index -= 1
        }
        return nil
    }

    /// Where the parameters ``RequestLine`` reads are: the last entry of
    /// each name (the one the subscript takes; -1 for none), found in one
    /// pass; how many `HTTP_X_REQUEST_ID` entries there are (several are
    /// joined, as the subscript joins a repeated header).
    struct RequestLineEntries {
        var method = -1, query = -1, uri = -1, scriptName = -1, pathInfo = -1, requestID = -1, requestIDs = 0
    }

    /// Finds ``RequestLineEntries``; no value is copied out yet.
    func requestLineEntries() -> RequestLineEntries {
        var found = RequestLineEntries()
        let bytes = bytes.span
        let layout = entries.values.span
        for index in 0..<(layout.count / 3) {
            let start = layout[index * 3]
            // The length picks the candidates, the first byte nearly always rules them out.
            switch layout[index * 3 + 1] {
            case 14 where Self.isKey(bytes, start, "REQUEST_METHOD"): found.method = index
            case 12 where Self.isKey(bytes, start, "QUERY_STRING"): found.query = index
            case 11 where Self.isKey(bytes, start, "REQUEST_URI"): found.uri = index
            case 11 where Self.isKey(bytes, start, "SCRIPT_NAME"): found.scriptName = index
            case 9 where Self.isKey(bytes, start, "PATH_INFO"): found.pathInfo = index
            case 17 where Self.isKey(bytes, start, "HTTP_X_REQUEST_ID"):
                found.requestID = index
                found.requestIDs += 1
            default: break
            }
        }
        return found
    }

    /// The value of entry `index` (from ``requestLineEntries()``), `nil` for -1.
    func value(ofEntry index: Int) -> String? { index < 0 ? nil : value(at: index) }

    /// Whether the key at `start` in `bytes` is `key`, whose length the
    /// caller has compared already: its first byte first, which rules out
    /// nearly every other key of that length.
    private static func isKey(_ bytes: Span<UInt8>, _ start: Int, _ key: String) -> Bool {
        bytes[start] == key.utf8.first && matches(bytes, start, key.utf8.span)
    }

    /// Whether the key at `start` in `bytes` is `wanted`, whose length and
    /// first byte the caller has compared already.
    private static func matches(_ bytes: Span<UInt8>, _ start: Int, _ wanted: Span<UInt8>) -> Bool {
        var offset = 1
        while offset < wanted.count, bytes[start + offset] == wanted[offset] { offset += 1 }
        return offset == wanted.count
    }
}
