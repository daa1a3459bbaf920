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
        for piece in header.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
            guard let equals = piece.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = trimmed(piece[piece.startIndex..<equals])
            var value = trimmed(piece[piece.index(after: equals)...])
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { continue }
            if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                value = value.dropFirst().dropLast()
            }
            guard let nameString = String(validating: name, as: UTF8.self),
                  let valueString = String(validating: value, as: UTF8.self)
            else { continue }
            if cookies[nameString] == nil {
                cookies[nameString] = valueString
            }
        }
        return cookies
    }

    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            bytes = bytes.dropFirst()
        }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            bytes = bytes.dropLast()
        }
        return bytes
    }
}
