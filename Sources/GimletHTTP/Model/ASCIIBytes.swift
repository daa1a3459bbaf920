extension Array where Element == UInt8 {
    /// Appends `value` in decimal ASCII digits, as wire formats spell lengths
    /// and codes (`Content-Length: 42`, RESP's `$42`), without making a `String`.
    package mutating func appendDecimal(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDigits(of: value.magnitude)
    }

    /// Appends CR LF, the line end of CGI headers and of RESP.
    package mutating func appendLineEnd() {
        append(UInt8(ascii: "\r"))
        append(UInt8(ascii: "\n"))
    }

    private mutating func appendDigits(of value: UInt) {
        if value >= 10 { appendDigits(of: value / 10) }
        append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
    }
}
