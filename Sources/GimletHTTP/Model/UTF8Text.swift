/// Text from bytes that must be valid UTF-8, with a fast path for ASCII.
///
/// The standard library's `String(validating:as:)` is generic and, called
/// from another module, runs unspecialized: about 900 instructions and two
/// metadata lookups for a short cookie value, several times per request.
/// Request text (header values, cookie values, JSON keys) is almost always
/// ASCII; for it one pass over the bytes proves validity, and the string is
/// made directly. Other input takes the standard library's path, so the
/// result is the same: `nil` for invalid UTF-8.
///
/// ```swift
/// UTF8Text.string(bytes[start..<end])   // "v", or nil for invalid UTF-8
/// ```
package enum UTF8Text {
    /// The bytes as a string, or `nil` when they are not valid UTF-8.
    package static func string(_ bytes: ArraySlice<UInt8>) -> String? {
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The bytes as a string, or `nil` when they are not valid UTF-8.
    package static func string(_ bytes: [UInt8]) -> String? {
        string(bytes[...])
    }
}
