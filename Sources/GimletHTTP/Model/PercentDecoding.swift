/// Percent-decoding shared by paths, query strings, forms and cookies.
package enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as a space when `plusAsSpace`).
    ///
    /// A `%` not followed by two hex digits is kept as it is, as browsers do.
    /// Returns `nil` when the decoded bytes are not valid UTF-8, so callers can
    /// ignore or refuse the input instead of inventing replacement characters.
    package static func decode<S: StringProtocol>(_ input: S, plusAsSpace: Bool) -> String? {
        let utf8 = input.utf8
        // Fast path: nothing to decode.
        if !utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(input)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                if first != utf8.endIndex {
                    let second = utf8.index(after: first)
                    if second != utf8.endIndex, let high = hexValue(utf8[first]), let low = hexValue(utf8[second]) {
                        bytes.append(high << 4 | low)
                        index = utf8.index(after: second)
                        continue
                    }
                }
                bytes.append(byte)
            } else if plusAsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
            index = utf8.index(after: index)
        }
        return UTF8Text.string(bytes)
    }

    /// Encodes every byte outside RFC 3986's unreserved set.
    static func encode(_ input: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(input.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in input.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A,
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
