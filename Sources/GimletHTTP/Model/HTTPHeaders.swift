/// Ordered, multi-valued response headers with case-insensitive names.
///
/// Order is kept as added, and a name may repeat (several `Set-Cookie`).
/// Names and values are checked when the response is written: one that
/// could split the header block (CR, LF, NUL, or a name that is not an
/// RFC 9110 token) turns the response into a logged 500 instead.
///
/// ```swift
/// var headers = HTTPHeaders()
/// headers.add("Set-Cookie", "a=1")
/// headers.add("Set-Cookie", "b=2")
/// headers["Content-Type"] = "text/plain"   // replaces every earlier value
/// ```
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, Equatable {
    private var fields: [(name: String, value: String)] = []

    /// Creates an empty header list.
    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        fields.reserveCapacity(elements.count)
        for (name, value) in elements { fields.append((name, value)) }
    }

    /// The number of fields, counting repeats.
    public var count: Int { fields.count }

    /// Appends a field, keeping any earlier ones of the same name.
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    /// Removes every field named `name`.
    public mutating func remove(_ name: String) {
        fields.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Whether a field named `name` is present.
    public func contains(_ name: String) -> Bool {
        fields.contains { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Every value of the fields named `name`, in order.
    public func values(for name: String) -> [String] {
        fields.compactMap { asciiCaseInsensitiveEquals($0.name, name) ? $0.value : nil }
    }

    /// The first value of `name`; setting replaces every field of that name
    /// (at the place of the first one), and `nil` removes them.
    public subscript(name: String) -> String? {
        get { fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value }
        set {
            guard let newValue else { remove(name); return }
            if let index = fields.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, name) }) {
                fields[index].value = newValue
                var next = index + 1
                while next < fields.count {
                    if asciiCaseInsensitiveEquals(fields[next].name, name) {
                        fields.remove(at: next)
                    } else {
                        next += 1
                    }
                }
            } else {
                fields.append((name, newValue))
            }
        }
    }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Compares two ASCII header names without allocating lowercased copies.
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            guard x.count == y.count else { return false }
            for i in 0..<x.count where x[i] != y[i] {
                guard asciiLower(x[i]) == asciiLower(y[i]) else { return false }
            }
            return true
        }
    }
}

@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}

/// Whether `byte` may appear in an RFC 9110 token (header names, cookie names).
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
         UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
         UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
         UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
    default: false
    }
}

/// Whether `string` is a non-empty RFC 9110 token.
func isToken(_ string: String) -> Bool {
    !string.isEmpty && string.utf8.allSatisfy(isTokenByte)
}
