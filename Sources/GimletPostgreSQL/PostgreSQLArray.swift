/// One-dimensional arrays in PostgreSQL's binary format, the form a
/// statement's array parameter takes when sent as ``PostgreSQLParameter/bytes(_:)``:
/// no quoting or escaping, so any bytes (a key with U+0000) go as they are.
///
/// The format: dimensions (0 for an empty array, else 1), a has-nulls flag,
/// the element type's OID, then for one dimension its length and lower
/// bound (1), then each element as a 4-byte length (-1: NULL) and its bytes,
/// all integers big-endian.
struct PostgreSQLArray {
    /// The element types the backend's statements take, by OID.
    enum Element: UInt32 {
        case bytea = 17
        case int8 = 20
        case text = 25
    }

    private var bytes: [UInt8] = []
    private var count: UInt32 = 0
    private var hasNull = false
    private let element: Element

    /// An empty array of `element`s.
    init(of element: Element) { self.element = element }

    /// `bytea[]` of `elements`.
    static func bytea<Elements: Sequence>(_ elements: Elements) -> [UInt8] where Elements.Element == [UInt8] {
        var array = PostgreSQLArray(of: .bytea)
        for element in elements { array.append(element) }
        return array.encoded
    }

    /// Appends one element's binary form (`nil`: SQL NULL).
    mutating func append<Bytes: Collection<UInt8>>(_ element: Bytes?) {
        count += 1
        guard let element else {
            hasNull = true
            Self.append(UInt32.max, to: &bytes)  // -1
            return
        }
        Self.append(UInt32(element.count), to: &bytes)
        bytes.append(contentsOf: element)
    }

    /// Appends an `int8` element.
    mutating func append(_ element: Int64) {
        count += 1
        Self.append(UInt32(8), to: &bytes)
        Self.append(UInt32(truncatingIfNeeded: UInt64(bitPattern: element) >> 32), to: &bytes)
        Self.append(UInt32(truncatingIfNeeded: UInt64(bitPattern: element)), to: &bytes)
    }

    /// The array, ready to send.
    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + bytes.count)
        Self.append(count == 0 ? 0 : 1, to: &out)
        Self.append(hasNull ? 1 : 0, to: &out)
        Self.append(element.rawValue, to: &out)
        if count > 0 {
            Self.append(count, to: &out)
            Self.append(1, to: &out)
        }
        out.append(contentsOf: bytes)
        return out
    }

    private static func append(_ value: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }
}
