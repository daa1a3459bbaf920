// The cookie codec behind its MAC: each input is sealed (signed, and for odd
// first bytes also encrypted) as a real cookie would be, then decoded, so the
// fuzzer reaches the payload parser and the JSON decoder, which a forged
// cookie never does. A decoded payload must encode and decode to itself.
import FuzzDriver
@testable import Gimlet
import Glibc

let signed = try! CookieCodec(secrets: ["fuzz-secret-0123456789abcdef"], encryptionKeys: [])
let sealed = try! CookieCodec(secrets: ["fuzz-secret-0123456789abcdef"], encryptionKeys: [String(repeating: "ab", count: 32)])

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    guard let first = bytes.first else { return 0 }
    let codec = first & 1 == 1 ? sealed : signed
    let value = codec.seal(Array(bytes.dropFirst()), cookieName: "gimlet-p")
    if case .valid(let payload, _) = codec.decode(value, cookieName: "gimlet-p") {
        let again = codec.decode(codec.encode(payload, cookieName: "gimlet-p"), cookieName: "gimlet-p")
        guard case .valid(let same, _) = again, same == payload else { fatalError("a payload did not survive encode and decode") }
    }
    // The same bytes as a raw (unsigned) cookie value must be refused, not crash.
    _ = codec.decode(String(decoding: bytes, as: UTF8.self), cookieName: "gimlet-n")
    return 0
}

exit(runFuzzer(testOneInput))
