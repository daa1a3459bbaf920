extension Response {
    /// The response as a CGI response (RFC 3875 §6): a `Status:` line, the
    /// headers, a `Content-Length` if none was set, a blank line, the body.
    ///
    /// Both transports (FastCGI and SCGI) write exactly these bytes.
    ///
    /// - Parameter includeBody: `false` for `HEAD`: headers only, but with the
    ///   `Content-Length` of the body a `GET` would have had.
    /// - Throws: ``UnsafeHeaderError`` if a header name is not a token or a
    ///   value contains CR, LF or NUL; the caller then sends a 500 instead.
    public func cgiBytes(includeBody: Bool = true) throws(UnsafeHeaderError) -> [UInt8] {
        guard (100...999).contains(status.code), Self.isSafeValue(status.reasonPhrase) else {
            throw UnsafeHeaderError(name: "Status")
        }
        var out: [UInt8] = []
        out.reserveCapacity(64 + headers.count * 64 + (includeBody ? body.count : 0))
        out.append(contentsOf: Self.statusPrefix)
        out.appendDecimal(status.code)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: status.reasonPhrase.utf8)
        out.appendLineEnd()
        var hasLength = false
        for (name, value) in headers {
            guard isToken(name), Self.isSafeValue(value) else { throw UnsafeHeaderError(name: name) }
            if !hasLength, asciiCaseInsensitiveEquals(name, "Content-Length") { hasLength = true }
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: ":"))
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: value.utf8)
            out.appendLineEnd()
        }
        // A 304 has no body, and its Content-Length would speak of the 200's;
        // a stream's length is not known (the web server chunks it or closes).
        if !hasLength, status.code != 304, stream == nil {
            out.append(contentsOf: Self.contentLengthPrefix)
            out.appendDecimal(body.count)
            out.appendLineEnd()
        }
        out.appendLineEnd()
        if includeBody { out.append(contentsOf: body) }
        return out
    }

    private static let statusPrefix = Array("Status: ".utf8)
    private static let contentLengthPrefix = Array("Content-Length: ".utf8)

    private static func isSafeValue(_ text: String) -> Bool {
        let bytes = text.utf8.span
        for index in bytes.indices where !isSafeValueByte(bytes[index]) { return false }
        return true
    }

    /// Field-value bytes (RFC 9110 §5.5): anything but CR, LF and NUL.
    @inline(__always)
    static func isSafeValueByte(_ byte: UInt8) -> Bool {
        byte != 0x0D && byte != 0x0A && byte != 0x00
    }
}

/// A handler produced a header that would split the CGI header block.
public struct UnsafeHeaderError: Error, Sendable, CustomStringConvertible {
    /// The offending header's name (or `Status`).
    public let name: String

    public var description: String {
        "response header \(String(reflecting: name)) has an invalid name or a CR, LF or NUL in its value"
    }
}
