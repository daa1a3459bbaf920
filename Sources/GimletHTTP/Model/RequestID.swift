import Synchronization

/// A request's id, for correlating the log lines of one request (and
/// nginx's own log with the app's): the web server's `X-Request-Id` when it
/// sends a usable one, otherwise one made here.
///
/// A made id has nginx's `$request_id` shape, 32 lowercase hex digits: 16
/// chosen at random when the process starts, 16 that differ for every
/// request of the process (a counter through a bijective mixer, so no two
/// requests of one process share an id and a request costs no system call).
package enum RequestID {
    /// The longest id taken from a request header.
    package static let maximumLength = 64

    /// The id for the request of `environ`, whose request line is `line`:
    /// the web server's, if acceptable, else a new one.
    package static func of(_ line: RequestLine, in environ: CGIEnvironment) -> String {
        accepted(line.requestIDHeader(in: environ)) ?? make()
    }

    /// `header`, if it is safe to put in a log line and a response header:
    /// 1 to 64 characters, letters, digits and `-_.:@+=/`. Anything else
    /// (spaces, quotes, control bytes, something longer) is ignored and a new
    /// id made, so a client cannot forge log lines through it.
    package static func accepted(_ header: String?) -> String? {
        guard let header, !header.isEmpty, header.utf8.count <= maximumLength,
              header.utf8.allSatisfy(isIDByte) else { return nil }
        return header
    }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return "-_.:@+=/".utf8.contains(byte)
        }
    }

    // protected by: atomic increments; requests that got a made id.
    private static let counter = Atomic<UInt64>(0)
    private static let mixerKey = UInt64.random(in: .min ... .max)
    /// The process's half of every id it makes, in hex digits.
    private static let processDigits: InlineArray<16, UInt8> = {
        let value = UInt64.random(in: .min ... .max)
        var digits = InlineArray<16, UInt8>(repeating: 0)
        for index in 0..<16 { digits[index] = hexDigit(value, at: index) }
        return digits
    }()

    /// A new id, unique in this process, with 64 random bits per process.
    ///
    /// Made in a fixed-size buffer on the stack: the string is the one
    /// allocation (an array first, then the string, cost an id 1.8k
    /// instructions, a fifth of what the operator's tools add to a request).
    package static func make() -> String {
        let count = counter.add(1, ordering: .relaxed).newValue
        let mixed = mix(count ^ mixerKey)
        let process = processDigits
        var bytes = InlineArray<32, UInt8>(repeating: 0)
        for index in 0..<16 {
            bytes[index] = process[index]
            bytes[16 + index] = hexDigit(mixed, at: index)
        }
        guard let text = try? UTF8Span(validating: bytes.span) else { preconditionFailure("hex digits are ASCII") }
        return String(copying: text)
    }

    /// splitmix64's finaliser: a bijection, so distinct counts give distinct values.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The lowercase hex digit of `value` at `index`, 0 being the most significant of its 16.
    private static func hexDigit(_ value: UInt64, at index: Int) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * UInt64(index))) & 0xF
        return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
