/// Parsing of the request `Cookie` header (RFC 6265 §4.2, §5.4).
public enum CookieHeader {
    /// The cookies in a `Cookie` header value, first occurrence of a name winning.
    ///
    /// Tolerant as browsers' servers must be: pairs are split on `;`,
    /// surrounding spaces and tabs are trimmed, a value in double quotes loses
    /// the quotes, and junk (a pair without `=`, an empty name, a name that is
    /// not a token) is skipped rather than failing the whole header.
    ///
    /// ```swift
    /// CookieHeader.parse(#"a=1; b="two"; junk; a=3"#)   // ["a": "1", "b": "two"]
    /// ```
    public static func parse(_ header: String) -> [String: String] {
        var cookies: [String: String] = [:]
        let bytes = Array(header.utf8)
        var index = 0
        while index < bytes.count {
            // One `name=value` piece, up to the next ';'.
            var end = index
            while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
            var equals = index
            while equals < end, bytes[equals] != UInt8(ascii: "=") { equals += 1 }
            if equals < end {
                var (nameStart, nameEnd) = (index, equals)
                trim(bytes, &nameStart, &nameEnd)
                var (valueStart, valueEnd) = (equals + 1, end)
                trim(bytes, &valueStart, &valueEnd)
                if valueEnd - valueStart >= 2, bytes[valueStart] == UInt8(ascii: "\""), bytes[valueEnd - 1] == UInt8(ascii: "\"") {
                    valueStart += 1
                    valueEnd -= 1
                }
                if nameEnd > nameStart, bytes[nameStart..<nameEnd].allSatisfy(isTokenByte),
                   let value = UTF8Text.string(bytes[valueStart..<valueEnd]) {
                    // A token is ASCII, so the name needs no validation.
                    let name = String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)
                    if cookies[name] == nil { cookies[name] = value }
                }
            }
            index = end + 1
        }
        return cookies
    }

    private static func trim(_ bytes: [UInt8], _ start: inout Int, _ end: inout Int) {
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
    }
}
