@testable import Gimlet
import GimletBackendSupport
import Testing

@Suite struct CookieCodecFormat {
    let secret = "0123456789abcdef0123456789abcdef"
    let key = "8f1d7e2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100"

    func payload(_ client: [String: SessionValue] = ["user": "frodo"]) -> CookiePayload {
        CookiePayload(id: .random(), created: 1_700_000_000, issued: 1_700_000_500, client: client)
    }

    @Test(arguments: [false, true])
    func roundTrip(encrypted: Bool) throws {
        let codec = try CookieCodec(secrets: [secret], encryptionKeys: encrypted ? [key] : [])
        for client in [[:], ["user": "frodo", "n": 3, "list": [1, 2]] as [String: SessionValue]] {
            let original = payload(client)
            let value = codec.encode(original, cookieName: "gimlet-p")
            #expect(value.utf8.allSatisfy { SetCookieOctets.allows($0) })
            #expect(codec.decode(value, cookieName: "gimlet-p") == .valid(original, stale: false))
        }
    }

    @Test func signedButReadableWithoutKeyEncryptedWith() throws {
        let plain = try CookieCodec(secrets: [secret], encryptionKeys: [])
        let sealed = try CookieCodec(secrets: [secret], encryptionKeys: [key])
        let secretValue: [String: SessionValue] = ["card": "4111-1111-PLAINTEXT"]
        let readable = Base64URL.decode(plain.encode(payload(secretValue), cookieName: "gimlet-p")) ?? []
        let hidden = Base64URL.decode(sealed.encode(payload(secretValue), cookieName: "gimlet-p")) ?? []
        #expect(String(decoding: readable, as: UTF8.self).contains("PLAINTEXT"))
        #expect(!String(decoding: hidden, as: UTF8.self).contains("PLAINTEXT"))
        #expect(!String(decoding: hidden, as: UTF8.self).contains("card"))
    }

    @Test func nameIsBoundIn() throws {
        for encryption in [nil, key] {
            let codec = try CookieCodec(secrets: [secret], encryptionKeys: encryption.map { [$0] } ?? [])
            let value = codec.encode(payload(), cookieName: "gimlet-n")
            guard case .invalid = codec.decode(value, cookieName: "gimlet-p") else {
                Issue.record("a gimlet-n value must not verify as gimlet-p")
                return
            }
        }
    }

    @Test func rotation() throws {
        let old = try CookieCodec(secrets: ["old-secret-old-secret"], encryptionKeys: [])
        let rotated = try CookieCodec(secrets: ["new-secret-new-secret", "old-secret-old-secret"], encryptionKeys: [])
        let retired = try CookieCodec(secrets: ["new-secret-new-secret"], encryptionKeys: [])
        let original = payload()
        let value = old.encode(original, cookieName: "gimlet-p")
        #expect(rotated.decode(value, cookieName: "gimlet-p") == .valid(original, stale: true))
        #expect(rotated.decode(rotated.encode(original, cookieName: "gimlet-p"), cookieName: "gimlet-p") == .valid(original, stale: false))
        guard case .invalid = retired.decode(value, cookieName: "gimlet-p") else {
            Issue.record("a secret no longer listed must not verify")
            return
        }
    }

    /// A new encryption key first, the old one after it: old cookies open
    /// (stale, so they are re-issued under the new key); once the old key
    /// is dropped they do not.
    @Test func encryptionKeyRotation() throws {
        let oldKey = String(repeating: "1f", count: 32), newKey = String(repeating: "2e", count: 32)
        let old = try CookieCodec(secrets: [secret], encryptionKeys: [oldKey])
        let rotating = try CookieCodec(secrets: [secret], encryptionKeys: [newKey, oldKey])
        let rotated = try CookieCodec(secrets: [secret], encryptionKeys: [newKey])
        let original = payload()
        let value = old.encode(original, cookieName: "gimlet-p")
        #expect(rotating.decode(value, cookieName: "gimlet-p") == .valid(original, stale: true))
        let reissued = rotating.encode(original, cookieName: "gimlet-p")
        #expect(rotated.decode(reissued, cookieName: "gimlet-p") == .valid(original, stale: false))
        guard case .invalid = rotated.decode(value, cookieName: "gimlet-p") else {
            Issue.record("a key no longer listed must not decrypt")
            return
        }
    }

    @Test func turningEncryptionOnReissuesOldCookies() throws {
        let plain = try CookieCodec(secrets: [secret], encryptionKeys: [])
        let sealed = try CookieCodec(secrets: [secret], encryptionKeys: [key])
        let original = payload()
        #expect(sealed.decode(plain.encode(original, cookieName: "c"), cookieName: "c") == .valid(original, stale: true))
        guard case .invalid = plain.decode(sealed.encode(original, cookieName: "c"), cookieName: "c") else {
            Issue.record("an encrypted cookie cannot be read without the key")
            return
        }
    }

    @Test func hostileValues() throws {
        for encryption in [nil, key] {
            let codec = try CookieCodec(secrets: [secret], encryptionKeys: encryption.map { [$0] } ?? [])
            let good = codec.encode(payload(), cookieName: "gimlet-p")
            var raw = Base64URL.decode(good) ?? []
            var flipped = raw
            flipped[flipped.count / 2] ^= 0x01
            raw[0] = 9
            let hostile = [
                "", "!", "%%%", String(good.dropLast(5)), String(good.prefix(10)), Base64URL.encode(flipped),
                Base64URL.encode(raw), String(repeating: "A", count: 100_000), Base64URL.encode([1]),
                Base64URL.encode([UInt8](repeating: 1, count: 33)), good + "A", "\"" + good + "\"",
            ]
            for value in hostile {
                guard case .invalid = codec.decode(value, cookieName: "gimlet-p") else {
                    Issue.record("accepted hostile cookie \(value.prefix(40))")
                    continue
                }
            }
        }
    }
}

/// RFC 6265 cookie-octets, for checking what the codec produces.
enum SetCookieOctets {
    static func allows(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x21, 0x23...0x2B, 0x2D...0x3A, 0x3C...0x5B, 0x5D...0x7E: true
        default: false
        }
    }
}

/// Backend URLs as logs and errors show them: no credential in sight.
@Suite struct BackendURLRedactionTests {
    @Test(arguments: [
        ("redis://app:pw@db:6379/0?prefix=x&password=pw2", "redis://app:***@db:6379/0?prefix=x&password=***"),
        ("redis://pw@db/1", "redis://***@db/1"),
        ("redis+sentinel://:pw@s1,s2:26380/main/0?sentinel_password=pw&wait=1",
         "redis+sentinel://:***@s1,s2:26380/main/0?sentinel_password=***&wait=1"),
        ("postgresql://gimlet:p@ss@db/app", "postgresql://gimlet:***@db/app"),
        ("postgresql://gimlet@db/app?sslmode=require", "postgresql://gimlet@db/app?sslmode=require"),
        ("postgres:///app?host=/run/pg&PASSWORD=x", "postgres:///app?host=/run/pg&PASSWORD=***"),
        ("sqlite:///var/lib/app/s.sqlite", "sqlite:///var/lib/app/s.sqlite"),
        ("memory:", "memory:"),
    ])
    func credentialsAreHidden(url: String, shown: String) {
        #expect(BackendURLRedaction.redacted(url) == shown)
    }
}
