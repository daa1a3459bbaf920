/// What a session cookie carries about its channel.
struct CookiePayload: Equatable {
    var id: SessionID
    /// When the channel was created (seconds since 1970).
    var created: Int64
    /// When this cookie was issued; drives renewal.
    var issued: Int64
    /// The client-side values.
    var client: [String: SessionValue]
    /// Whether the channel may have server-side data (no load or delete is needed otherwise).
    var hasServerData: Bool = false
    /// Whether the channel is bound to a user (``Session/bind(toUser:recording:)``),
    /// so its server-side marker says whether it was revoked.
    var bound: Bool = false
}

/// Turns a channel into a cookie value and back: versioned binary in
/// base64url, HMAC-SHA256-signed under a key derived from each secret,
/// optionally AES-GCM-encrypted, and bound to the cookie's name.
///
/// Layout (before base64url):
///
///     version 1:  0x01 ‖ flags ‖ id(16) ‖ created(u32) ‖ issued(u32) ‖ JSON        ‖ HMAC(32)
///     version 2:  0x02 ‖ nonce(12) ‖ AES-GCM(flags ‖ id ‖ created ‖ issued ‖ JSON) ‖ tag(16) ‖ HMAC(32)
///
/// `flags` bit 0: the channel may have server-side data; bit 1: it is bound to a user.
///
/// The HMAC covers `name ‖ 0x00 ‖ everything before it`; AES-GCM takes
/// `name ‖ 0x00 ‖ version` as associated data. Times are unsigned 32-bit
/// seconds (good until 2106). Empty client data is zero bytes of JSON.
final class CookieCodec: Sendable {
    enum Decoded: Equatable {
        /// A good cookie; `stale` when it was signed with a retired secret or in
        /// a format this configuration no longer writes (re-issue it).
        case valid(CookiePayload, stale: Bool)
        case invalid(reason: String)
    }

    private let signingKeys: [HMACKey]
    /// The first encrypts; every one decrypts.
    private let encryptionKeys: [[UInt8]]
    static let macLength = 32
    /// flags ‖ id ‖ created ‖ issued
    static let headerLength = 25

    init(secrets: [String], encryptionKeys: [String]) throws(SessionConfigurationError) {
        var keys: [HMACKey] = []
        for secret in secrets {
            var derived = try Crypto.hkdfSHA256(
                key: Array(secret.utf8), salt: Array("gimlet-session".utf8), info: Array("cookie-signing-v1".utf8),
                length: 32)
            keys.append(try HMACKey(derived))
            Crypto.cleanse(&derived)
        }
        signingKeys = keys
        var decoded: [[UInt8]] = []
        for key in encryptionKeys { decoded.append(try SessionConfiguration.decodeEncryptionKey(key)) }
        self.encryptionKeys = decoded
    }

    func encode(_ payload: CookiePayload, cookieName: String) -> String {
        var plain: [UInt8] = []
        plain.reserveCapacity(Self.headerLength + payload.client.count * 16)
        plain.append((payload.hasServerData ? 1 : 0) | (payload.bound ? 2 : 0))
        payload.id.appendBytes(to: &plain)
        appendTime(payload.created, to: &plain)
        appendTime(payload.issued, to: &plain)
        if !payload.client.isEmpty { SessionValue.object(payload.client).encode(into: &plain) }

        return seal(plain, cookieName: cookieName)
    }

    /// The cookie value for payload bytes `plain`: encrypted when there is an
    /// encryption key, then signed with the first secret. (The fuzz target
    /// seals arbitrary bytes with it, to reach the decoder behind the MAC.)
    func seal(_ plain: [UInt8], cookieName: String) -> String {
        var plain = plain
        let bound = Array(cookieName.utf8) + [0]
        var out: [UInt8]
        if let encryptionKey = encryptionKeys.first {
            out = [2]
            let nonce = Crypto.randomBytes(12)
            out.append(contentsOf: nonce)
            out.append(contentsOf: Crypto.aesGCMSeal(key: encryptionKey, nonce: nonce, plaintext: plain,
                                                     associatedData: bound + [2]))
            Crypto.cleanse(&plain)
        } else {
            out = [1]
            out.append(contentsOf: plain)
        }
        out.append(contentsOf: signingKeys[0].authenticate(bound, out))
        return Base64URL.encode(out)
    }

    func decode(_ value: String, cookieName: String) -> Decoded {
        guard let raw = Base64URL.decode(value) else { return .invalid(reason: "not base64url") }
        guard raw.count > 1 + Self.macLength else { return .invalid(reason: "too short") }
        let version = raw[0]
        guard version == 1 || version == 2 else { return .invalid(reason: "unknown version \(version)") }
        let signed = Array(raw[..<(raw.count - Self.macLength)])
        let mac = Array(raw[(raw.count - Self.macLength)...])
        let bound = Array(cookieName.utf8) + [0]
        guard let keyIndex = signingKeys.firstIndex(where: {
            Crypto.constantTimeEquals($0.authenticate(bound, signed), mac)
        }) else { return .invalid(reason: "bad signature (tampered, another secret, or another cookie's value)") }

        let plain: [UInt8]
        var retiredKey = false
        if version == 2 {
            guard !encryptionKeys.isEmpty else { return .invalid(reason: "encrypted, but no encryption key is configured") }
            guard signed.count >= 1 + 12 + 16 else { return .invalid(reason: "too short") }
            let nonce = Array(signed[1..<13]), sealed = Array(signed[13...])
            guard let (index, opened) = encryptionKeys.enumerated().lazy.compactMap({ index, key in
                Crypto.aesGCMOpen(key: key, nonce: nonce, sealed: sealed, associatedData: bound + [2]).map { (index, $0) }
            }).first
            else { return .invalid(reason: "does not decrypt under any configured encryption key") }
            retiredKey = index > 0
            plain = opened
        } else {
            plain = Array(signed[1...])
        }
        guard plain.count >= Self.headerLength, plain[0] <= 3, let id = SessionID(bytes: plain[1..<17]) else {
            return .invalid(reason: "truncated payload or unknown flags")
        }
        var client: [String: SessionValue] = [:]
        if plain.count > Self.headerLength {
            guard case .object(let members)? = try? SessionValue(json: Array(plain[Self.headerLength...])) else {
                return .invalid(reason: "client data is not a JSON object")
            }
            client = members
        }
        let payload = CookiePayload(id: id, created: readTime(plain, at: 17), issued: readTime(plain, at: 21),
                                    client: client, hasServerData: plain[0] & 1 != 0, bound: plain[0] & 2 != 0)
        let stale = keyIndex > 0 || retiredKey || (version == 1) != encryptionKeys.isEmpty
        return .valid(payload, stale: stale)
    }

    private func appendTime(_ seconds: Int64, to bytes: inout [UInt8]) {
        let value = UInt32(clamping: seconds)
        bytes.append(UInt8(value >> 24))
        bytes.append(UInt8(value >> 16 & 0xFF))
        bytes.append(UInt8(value >> 8 & 0xFF))
        bytes.append(UInt8(value & 0xFF))
    }

    private func readTime(_ bytes: [UInt8], at offset: Int) -> Int64 {
        Int64(bytes[offset]) << 24 | Int64(bytes[offset + 1]) << 16 | Int64(bytes[offset + 2]) << 8 | Int64(bytes[offset + 3])
    }
}
