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
    private static let processPart = UInt64.random(in: .min ... .max)
    private static let mixerKey = UInt64.random(in: .min ... .max)

    /// A new id, unique in this process, with 64 random bits per process.
    package static func make() -> String {
        let count = counter.add(1, ordering: .relaxed).newValue
        var bytes = [UInt8](repeating: 0, count: 32)
        write(processPart, into: &bytes, at: 0)
        write(mix(count ^ mixerKey), into: &bytes, at: 16)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// splitmix64's finaliser: a bijection, so distinct counts give distinct values.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func write(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<16 {
            let nibble = UInt8((value >> (60 - 4 * UInt64(index))) & 0xF)
            bytes[offset + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }
}
