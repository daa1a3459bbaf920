/// A channel's identifier: 16 random bytes, shown as 32 lowercase hex digits.
///
/// Kept as two words, not an array: an id is hashed, compared and written
/// into a cookie or a backend key on every request that uses a session, and
/// none of that should allocate.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    private let high: UInt64
    private let low: UInt64

    /// A fresh id from OpenSSL's random generator.
    public static func random() -> SessionID {
        guard let id = SessionID(bytes: Crypto.randomBytes(16)[...]) else {
            preconditionFailure("Crypto.randomBytes(16) returned another length")
        }
        return id
    }

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An id from its 16 bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        self.init(bytes: bytes[...])
    }

    /// The id named `name` in `namespace`: the same on every host, and
    /// unlike any random channel id (16 bytes of HKDF-SHA-256 of the name,
    /// the namespace as salt). A user's index and the sign-in counters live
    /// under such ids.
    ///
    /// - Throws: ``SessionConfigurationError`` if libcrypto fails to derive it.
    static func derived(from name: String, namespace: String, info: String) throws -> SessionID {
        let bytes = try Crypto.hkdfSHA256(key: Array(name.utf8), salt: Array(namespace.utf8), info: Array(info.utf8), length: 16)
        guard let id = SessionID(bytes: bytes) else { throw SessionConfigurationError("HKDF gave \(bytes.count) bytes, not 16") }
        return id
    }

    /// An id from 16 bytes of a larger buffer; `nil` for any other length.
    init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        var index = bytes.startIndex
        for _ in 0..<8 {
            high = high << 8 | UInt64(bytes[index])
            index += 1
        }
        for _ in 0..<8 {
            low = low << 8 | UInt64(bytes[index])
            index += 1
        }
        self.init(high: high, low: low)
    }

    /// An id from 32 hex digits; `nil` for anything else.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == 16 else { return nil }
        self.init(bytes: bytes[...])
    }

    /// The 16 bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        appendBytes(to: &out)
        return out
    }

    /// The 32 lowercase hex digits.
    public var hex: String {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 16 bytes, most significant first.
    func appendBytes(to out: inout [UInt8]) {
        Self.appendBytes(of: high, to: &out)
        Self.appendBytes(of: low, to: &out)
    }

    /// Appends the 32 lowercase hex digits, as backends spell the id in their keys.
    public func appendHex(to out: inout [UInt8]) {
        Self.appendHex(of: high, to: &out)
        Self.appendHex(of: low, to: &out)
    }

    private static func appendBytes(of word: UInt64, to out: inout [UInt8]) {
        var shift: UInt64 = 64
        while shift > 0 {
            shift -= 8
            out.append(UInt8(truncatingIfNeeded: word >> shift))
        }
    }

    private static func appendHex(of word: UInt64, to out: inout [UInt8]) {
        var shift: UInt64 = 64
        while shift > 0 {
            shift -= 4
            out.append(Hex.digit(UInt8(truncatingIfNeeded: word >> shift) & 0xF))
        }
    }

    public var description: String { hex }
}

enum Hex {
    static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0xF))
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}

/// base64url without padding (RFC 4648 §5), the cookie value alphabet.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        let table = alphabet
        let full = bytes.count / 3, rest = bytes.count % 3
        var out = [UInt8].zeroed(count: full * 4 + (rest == 0 ? 0 : rest + 1))
        var index = 0, written = 0
        // Three bytes make four characters, written in place.
        while index + 3 <= bytes.count {
            let word = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out[written] = table[Int(word >> 18 & 63)]
            out[written + 1] = table[Int(word >> 12 & 63)]
            out[written + 2] = table[Int(word >> 6 & 63)]
            out[written + 3] = table[Int(word & 63)]
            index += 3
            written += 4
        }
        if rest > 0 {
            let word = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out[written] = table[Int(word >> 18 & 63)]
            out[written + 1] = table[Int(word >> 12 & 63)]
            if rest == 2 { out[written + 2] = table[Int(word >> 6 & 63)] }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes; `nil` for characters outside the alphabet, padding, or an impossible length.
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        let count = input.count
        guard count % 4 != 1 else { return nil }
        let table = reverse
        var out = [UInt8].zeroed(count: count * 3 / 4)
        var index = 0, written = 0
        // Four characters make three bytes; 0xFF marks a character outside the alphabet.
        while index + 4 <= count {
            let a = table[Int(input[index])], b = table[Int(input[index + 1])]
            let c = table[Int(input[index + 2])], d = table[Int(input[index + 3])]
            guard (a | b | c | d) & 0xC0 == 0 else { return nil }
            let word = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
            out[written] = UInt8(truncatingIfNeeded: word >> 16)
            out[written + 1] = UInt8(truncatingIfNeeded: word >> 8)
            out[written + 2] = UInt8(truncatingIfNeeded: word)
            index += 4
            written += 3
        }
        // Leftover bits must be zero, so every byte string has one encoding.
        switch count - index {
        case 2:
            let a = table[Int(input[index])], b = table[Int(input[index + 1])]
            guard (a | b) & 0xC0 == 0, b & 0x0F == 0 else { return nil }
            out[written] = a << 2 | b >> 4
        case 3:
            let a = table[Int(input[index])], b = table[Int(input[index + 1])], c = table[Int(input[index + 2])]
            guard (a | b | c) & 0xC0 == 0, c & 0x03 == 0 else { return nil }
            let word = UInt32(a) << 12 | UInt32(b) << 6 | UInt32(c)
            out[written] = UInt8(truncatingIfNeeded: word >> 10)
            out[written + 1] = UInt8(truncatingIfNeeded: word >> 2)
        default:
            break
        }
        return out
    }
}
