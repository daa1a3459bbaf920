@_spi(GimletInlined) import GimletHTTP

/// The header block of an SCGI request (the SCGI protocol, 2006): a netstring
/// `LENGTH:` + `NAME\0VALUE\0…` + `,`, with `CONTENT_LENGTH` first and numeric
/// and `SCGI` equal to `1`.
package struct SCGIRequestHead: Sendable {
    /// The parameters, as a CGI environ.
    package let environ: CGIEnvironment
    /// The announced body length.
    package let contentLength: Int
    /// Bytes of the input the head took (the body starts there).
    package let headLength: Int

    /// What parsing the start of a connection's input gave.
    package enum ParseResult: Sendable {
        case complete(SCGIRequestHead)
        /// The head is not complete yet: read more.
        case needMore
        /// The input is not a valid SCGI request; close the connection.
        case invalid(String)
    }

    /// Parses the head at the start of `input`.
    ///
    /// - Parameter maximumHeaderBytes: the largest header block accepted.
    package static func parse(_ input: [UInt8], maximumHeaderBytes: Int) -> ParseResult {
        // Netstring length: decimal digits, no leading zero, then ':'.
        var index = 0
        var length = 0
        while index < input.count, input[index] >= 0x30, input[index] <= 0x39 {
            length = length * 10 + Int(input[index] - 0x30)
            index += 1
            if length > maximumHeaderBytes { return .invalid("header block is larger than \(maximumHeaderBytes) bytes") }
        }
        if index == input.count { return .needMore }
        guard index > 0 else { return .invalid("request does not start with a netstring length") }
        guard index == 1 || input[0] != 0x30 else { return .invalid("netstring length has a leading zero") }
        guard input[index] == UInt8(ascii: ":") else { return .invalid("netstring length is not followed by ':'") }
        let start = index + 1
        let end = start + length
        guard input.count > end else { return .needMore }
        guard input[end] == UInt8(ascii: ",") else { return .invalid("netstring does not end with ','") }
        guard length > 0, input[end - 1] == 0 else { return .invalid("header block does not end with NUL") }

        // NAME\0VALUE\0 pairs.
        var layout = CGIEnvironment.Layout(capacity: 32)
        var seen = Set<ArraySlice<UInt8>>()
        var fieldStart = start
        var nameEnd = -1
        var contentLength: Int?
        var scgi = false
        for position in start..<end where input[position] == 0 {
            if nameEnd < 0 {
                nameEnd = position
                continue
            }
            let name = input[fieldStart..<nameEnd]
            let value = input[(nameEnd + 1)..<position]
            guard !name.isEmpty else { return .invalid("empty header name") }
            // nginx passes a request header sent on several lines as several
            // HTTP_ parameters; the environ joins them. Any other name twice
            // (CONTENT_LENGTH above all) is refused.
            guard seen.insert(name).inserted || name.starts(with: "HTTP_".utf8) else {
                return .invalid("duplicate header \(String(decoding: name, as: UTF8.self))")
            }
            if layout.isEmpty {
                guard name.elementsEqual("CONTENT_LENGTH".utf8) else { return .invalid("the first header is not CONTENT_LENGTH") }
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    return .invalid("CONTENT_LENGTH is not a number")
                }
                contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            }
            if name.elementsEqual("SCGI".utf8) {
                guard value.elementsEqual("1".utf8) else { return .invalid("SCGI is not 1") }
                scgi = true
            }
            layout.append(start: fieldStart - start, keyLength: name.count, valueLength: value.count)
            fieldStart = position + 1
            nameEnd = -1
        }
        guard nameEnd < 0 else { return .invalid("a header name has no value") }
        guard let contentLength else { return .invalid("no CONTENT_LENGTH header") }
        guard scgi else { return .invalid("no SCGI header") }
        // NUL separates name and value: the environ reads them like KEY=VALUE.
        let environ = CGIEnvironment(storage: Array(input[start..<end]), layout: layout)
        return .complete(SCGIRequestHead(environ: environ, contentLength: contentLength, headLength: end + 1))
    }
}
