import Foundation
import Testing
@testable import Gimlet

/// libcrypto as we call it, checked against answers we did not compute:
/// RFC test vectors and OpenSSL's own command line.
@Suite struct CryptoKnownAnswers {
    func hex(_ text: String) -> [UInt8] { Hex.decode(text) ?? [] }

    @Test func hmacSHA256RFC4231() throws {
        let key = try HMACKey(Array("Jefe".utf8))
        for _ in 0..<3 {  // pooled contexts are reset between messages
            #expect(Hex.encode(key.authenticate(Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
            #expect(Hex.encode(key.authenticate(Array("what do ya want ".utf8), [], Array("for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        }
    }

    @Test func hmacSHA256AgainstOpenSSLCommandLine() throws {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let message = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let output = try openssl(["dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + Hex.encode(key)], input: message)
        #expect(output.hasSuffix("= " + Hex.encode(try HMACKey(key).authenticate(message))))
    }

    @Test func hkdfRFC5869Case1() throws {
        let okm = try Crypto.hkdfSHA256(key: [UInt8](repeating: 0x0b, count: 22), salt: hex("000102030405060708090a0b0c"),
                                        info: hex("f0f1f2f3f4f5f6f7f8f9"), length: 42)
        #expect(Hex.encode(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    }

    @Test func hkdfAgainstOpenSSLCommandLine() throws {
        let okm = try Crypto.hkdfSHA256(key: Array("a secret of some length".utf8), salt: Array("gimlet-session".utf8),
                                        info: Array("cookie-signing-v1".utf8), length: 32)
        let output = try openssl(["kdf", "-keylen", "32", "-kdfopt", "digest:SHA256",
                                  "-kdfopt", "key:a secret of some length", "-kdfopt", "salt:gimlet-session",
                                  "-kdfopt", "info:cookie-signing-v1", "HKDF"], input: [])
        #expect(output.replacingOccurrences(of: ":", with: "").lowercased() == Hex.encode(okm))
    }

    // The GCM specification's test cases 13, 14 and 16 (McGrew & Viega).
    @Test func aesGCMTestVectors() {
        let zeros = [UInt8](repeating: 0, count: 32), nonce = [UInt8](repeating: 0, count: 12)
        #expect(Hex.encode(Crypto.aesGCMSeal(key: zeros, nonce: nonce, plaintext: [], associatedData: []))
            == "530f8afbc74536b9a963b4f1c4cb738b")
        #expect(Hex.encode(Crypto.aesGCMSeal(key: zeros, nonce: nonce, plaintext: [UInt8](repeating: 0, count: 16), associatedData: []))
            == "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let iv = hex("cafebabefacedbaddecaf888")
        let plain = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let sealed = Crypto.aesGCMSeal(key: key, nonce: iv, plaintext: plain, associatedData: aad)
        #expect(Hex.encode(sealed) == "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b")
        #expect(Crypto.aesGCMOpen(key: key, nonce: iv, sealed: sealed, associatedData: aad) == plain)
        var flipped = sealed
        flipped[3] ^= 1
        #expect(Crypto.aesGCMOpen(key: key, nonce: iv, sealed: flipped, associatedData: aad) == nil)
        #expect(Crypto.aesGCMOpen(key: key, nonce: iv, sealed: sealed, associatedData: aad + [0]) == nil)
        #expect(Crypto.aesGCMOpen(key: key, nonce: iv, sealed: Array(sealed.prefix(10)), associatedData: aad) == nil)
    }

    @Test func aesGCMOpensAnEmptyPlaintext() {
        // Case 13: no plaintext, only the tag; opening gives back nothing, and a bad tag nothing either.
        let zeros = [UInt8](repeating: 0, count: 32), nonce = [UInt8](repeating: 0, count: 12)
        let tagOnly = hex("530f8afbc74536b9a963b4f1c4cb738b")
        #expect(Crypto.aesGCMOpen(key: zeros, nonce: nonce, sealed: tagOnly, associatedData: []) == [])
        var bad = tagOnly
        bad[0] ^= 1
        #expect(Crypto.aesGCMOpen(key: zeros, nonce: nonce, sealed: bad, associatedData: []) == nil)
    }

    @Test func randomAndConstantTime() {
        #expect(Crypto.randomBytes(16) != Crypto.randomBytes(16))
        #expect(Crypto.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Crypto.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(SessionID.random().hex.count == 32)
    }

    @Test(arguments: [0, 1, 2, 3, 4, 5, 31, 32, 33, 100])
    func base64URLRoundTrips(length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let encoded = Base64URL.encode(bytes)
        #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
        #expect(Base64URL.decode(encoded) == bytes)
    }

    @Test func base64URLRefusesJunk() {
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("ab=c") == nil)
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.decode("AB") == nil)  // non-zero leftover bits
        #expect(Base64URL.decode("AA") == [0])
    }

    func openssl(_ arguments: [String], input: [UInt8]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " "))")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite struct SessionValueJSON {
    @Test(arguments: [
        #"null"#, #"true"#, #"false"#, #"0"#, #"-12"#, #"1.5"#, #""a\"b\\c\n\u0001""#, #"[]"#, #"{}"#,
        #"[1,"two",[3],{"k":null}]"#, #"{"a":1,"b":{"c":[true,false]}}"#, #""\ud83d\ude00 ✓""#,
    ])
    func roundTrips(json: String) throws {
        let value = try SessionValue(json: Array(json.utf8))
        #expect(try SessionValue(json: value.json) == value)
    }

    @Test func encodesCompactlyAndSorted() {
        let value: SessionValue = ["b": 1, "a": [true, nil, "x"]]
        #expect(String(decoding: value.json, as: UTF8.self) == #"{"a":[true,null,"x"],"b":1}"#)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\"}", "01", "1.", "tru", "\"\u{1}\"", "\"\\x\"", "[1] 2", "\"\\ud800\"",
                      String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "1e999", "-"])
    func refusesBadJSON(json: String) {
        #expect(throws: SessionValueError.self) { try SessionValue(json: Array(json.utf8)) }
    }

    @Test func accessorsAndCodable() throws {
        struct Cart: Codable, Equatable { var items: [String]; var total: Int }
        let value = try SessionValue(encoding: Cart(items: ["ring"], total: 3))
        #expect(value["total"]?.intValue == 3)
        #expect(try value.decode(as: Cart.self) == Cart(items: ["ring"], total: 3))
        var list: SessionValue = ["a"]
        list.append("b")
        #expect(list.arrayValue?.count == 2)
        #expect(SessionValue.double(2.0).intValue == 2)
        #expect(SessionValue.string("x").text == "x")
        #expect(SessionValue.int(7).text == "7")
    }
}
