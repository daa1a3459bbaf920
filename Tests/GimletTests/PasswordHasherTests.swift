import Foundation
import Testing
@testable import Gimlet

/// Passwords hashed on libcrypto: known answers, PHC strings, rehashing and
/// the limits a stored hash cannot get past.
@Suite struct PasswordHasherTests {
    static func hex(_ bytes: [UInt8]?) -> String { (bytes ?? []).map { String(format: "%02x", $0) }.joined() }

    /// RFC 7914's scrypt vector and RFC 7914 / 6070-style PBKDF2-HMAC-SHA256 vectors.
    @Test func knownAnswers() {
        #expect(Self.hex(Crypto.scrypt(password: Array("password".utf8), salt: Array("NaCl".utf8), logN: 10, r: 8, p: 16,
                                       length: 64, maximumMemory: 64 << 20))
                == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
        #expect(Self.hex(Crypto.pbkdf2SHA256(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, length: 64))
                == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
    }

    @Test(arguments: [PasswordHasher.Algorithm.scrypt(logN: 10, r: 8, p: 1), .pbkdf2SHA256(iterations: 1000)])
    func hashesVerifyAndSayWhenToRehash(algorithm: PasswordHasher.Algorithm) throws {
        let hasher = PasswordHasher(algorithm: algorithm)
        let stored = try hasher.hash("correct horse battery staple")
        #expect(stored.hasPrefix(algorithm == .pbkdf2SHA256(iterations: 1000) ? "$pbkdf2-sha256$i=1000$" : "$scrypt$ln=10,r=8,p=1$"))
        #expect(try hasher.hash("correct horse battery staple") != stored, "a fresh salt each time")
        #expect(try hasher.verify("correct horse battery staple", against: stored))
        #expect(try !hasher.verify("correct horse battery stapler", against: stored))
        #expect(try !hasher.verify("", against: stored))
        #expect(!hasher.needsRehash(stored))
        #expect(PasswordHasher(algorithm: .scrypt(logN: 11, r: 8, p: 1)).needsRehash(stored))
        #expect(try PasswordHasher().verify("correct horse battery staple", against: stored),
                "any hasher verifies with the stored parameters")
        #expect(try hasher.verify("pässwörd ✓", against: try hasher.hash("pässwörd ✓")), "UTF-8 passwords")
    }

    /// A stored hash is input too: a forged one gets an error, never a long or huge computation.
    @Test(arguments: [
        "", "plain", "$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ", "$md5$x$y$z", "$scrypt$ln=15,r=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=21,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$scrypt$ln=15,r=8,p=99$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$pbkdf2-sha256$i=99999999$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA", "$pbkdf2-sha256$i=1000,i=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$pbkdf2-sha256$i=-1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaA",
    ])
    func malformedOrCostlyHashesAreRefused(hash: String) {
        #expect(throws: PasswordHasherError.self) { try PasswordHasher().verify("password", against: hash) }
        #expect(PasswordHasher().needsRehash(hash))
    }

    @Test func anOverlongPasswordIsRefused() {
        let long = String(repeating: "x", count: PasswordHasher.maximumPasswordBytes + 1)
        #expect(throws: PasswordHasherError.self) { try PasswordHasher(algorithm: .pbkdf2SHA256(iterations: 1)).hash(long) }
    }
}
