/// Name–value pairs from a query string or an
/// `application/x-www-form-urlencoded` body, in their original order.
///
/// Parsing follows the WHATWG URL standard: pairs split on `&`, `+` is a
/// space, `%XX` escapes are decoded, a pair without `=` has an empty value.
/// Pairs that do not decode to valid UTF-8 are ignored.
///
/// ```swift
/// let form = URLEncodedForm("tag=a&tag=b&q=hello+world")
/// form["q"]            // "hello world"
/// form.values(for: "tag")  // ["a", "b"]
/// ```
public struct URLEncodedForm: Sendable, Sequence, Equatable {
    private var pairs: [(name: String, value: String)]

    /// An empty form.
    public init() { pairs = [] }

    /// Parses `encoded` (a query string without the `?`, or a form body).
    public init<S: StringProtocol>(_ encoded: S) {
        pairs = []
        // Bytes, not characters, as the standard says: no grapheme breaking,
        // and an `&` followed by a combining mark still separates.
        for piece in Substring(encoded).utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                name = Substring(piece[..<equals])
                value = Substring(piece[piece.index(after: equals)...])
            } else {
                name = Substring(piece)
                value = ""
            }
            guard let decodedName = PercentDecoding.decode(name, plusAsSpace: true),
                  let decodedValue = PercentDecoding.decode(value, plusAsSpace: true)
            else { continue }
            pairs.append((decodedName, decodedValue))
        }
    }

    /// Parses a form body; a pair whose bytes are not valid UTF-8 is ignored.
    public init(bytes: [UInt8]) {
        pairs = []
        for piece in bytes.split(separator: UInt8(ascii: "&")) {
            guard let text = UTF8Text.string(piece) else { continue }
            pairs.append(contentsOf: URLEncodedForm(text).pairs)
        }
    }

    /// The first value for `name`.
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Every value for `name`, in order.
    public func values(for name: String) -> [String] {
        pairs.compactMap { $0.name == name ? $0.value : nil }
    }

    /// Whether `name` occurs.
    public func contains(_ name: String) -> Bool {
        pairs.contains { $0.name == name }
    }

    /// The number of pairs.
    public var count: Int { pairs.count }

    /// Whether there are no pairs.
    public var isEmpty: Bool { pairs.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        pairs.makeIterator()
    }

    public static func == (lhs: URLEncodedForm, rhs: URLEncodedForm) -> Bool {
        lhs.pairs.count == rhs.pairs.count
            && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
