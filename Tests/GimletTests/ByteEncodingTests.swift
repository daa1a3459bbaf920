import Foundation
import Testing
@testable import Gimlet

@Suite struct ByteEncodings {
    /// Foundation's base64, turned into the url alphabet without padding: the reference.
    func reference(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func base64URLRoundTripsEveryLengthAgainstFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == reference(bytes))
            #expect(Base64URL.decode(encoded) == bytes)
        }
    }

    @Test func base64URLRefusesWhatHasNoCanonicalBytes() {
        // A length of 4n+1, padding, the standard alphabet's + and /, other bytes, non-zero leftover bits.
        for text in ["A", "AAAAA", "QQ==", "+/AA", "AA AA", "ä", "QR", "QUJ", "QUI", "AAA\u{0}"] {
            if text == "QUI" { continue }  // "AB" in canonical form: the control case below.
            #expect(Base64URL.decode(text) == nil, "\(text)")
        }
        #expect(Base64URL.decode("QUI") == Array("AB".utf8))
        #expect(Base64URL.decode("QQ") == Array("A".utf8))
        #expect(Base64URL.decode("") == [])
    }

    @Test func sessionIDKeepsItsBytesAndHex() throws {
        let bytes: [UInt8] = Array(0..<16).map { UInt8($0 * 17) }
        let id = try #require(SessionID(bytes: bytes))
        #expect(id.bytes == bytes)
        #expect(id.hex == "00112233445566778899aabbccddeeff")
        #expect(SessionID(hex: id.hex) == id)
        #expect(SessionID(hex: id.hex.uppercased()) == id)
        var hex: [UInt8] = Array("gimlet:".utf8)
        id.appendHex(to: &hex)
        #expect(String(decoding: hex, as: UTF8.self) == "gimlet:" + id.hex)
        #expect(SessionID(bytes: Array(bytes.dropLast())) == nil)
        #expect(SessionID(hex: String(id.hex.dropLast())) == nil)
        #expect(SessionID(hex: "zz" + id.hex.dropFirst(2)) == nil)

        let other = try #require(SessionID(bytes: bytes.dropLast() + [0]))
        #expect(other != id)
        #expect(Set([id, other, id]).count == 2)
        #expect(SessionID.random() != SessionID.random())
    }

    @Test func randomBytesFromTheBlockAreNeverHandedOutTwice() {
        // 600 ids are 9,600 bytes: more than two 4 KiB blocks, so refills are crossed.
        let ids = (0..<600).map { _ in SessionID.random() }
        #expect(Set(ids).count == ids.count)
        let pieces = (0..<300).map { _ in Crypto.randomBytes(12) }
        #expect(Set(pieces).count == pieces.count)
        #expect(pieces.allSatisfy { $0.count == 12 })
        #expect(Crypto.randomBytes(5000).count == 5000, "large requests go straight to OpenSSL")
        // Not all zero, and the bytes vary (a broken copy would repeat one value).
        let sample = Crypto.randomBytes(64)
        #expect(Set(sample).count > 16)
    }
}
