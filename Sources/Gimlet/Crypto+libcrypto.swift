// The only file that calls OpenSSL. Every libcrypto call goes through here.
import COpenSSL
import Glibc
import Synchronization

/// An HMAC-SHA256 key, set up once: OpenSSL's one-shot `HMAC()` fetches the
/// algorithm from the provider store on every call, which costs more than
/// the MAC itself on a short cookie. This keeps keyed contexts in a small
/// pool; a MAC takes one, re-initializes it with its stored key
/// (`EVP_MAC_init` with no key), and gives it back.
///
/// Not `Pool` (GimletBackendSupport): on `/get/k` (two MACs or more per request) the
/// generic pool cost about 3,000 more instructions per request than this
/// array (bench/instructions, 80.5k against 77.4k), and a MAC context
/// needs no bound, no discarding and no counters.
///
/// `@unchecked Sendable`: the template is written only in `init` and then
/// only read by `EVP_MAC_CTX_dup`; a pooled context is used by the one
/// thread that took it out of the mutex until it puts it back.
final class HMACKey: @unchecked Sendable {
    private let mac: OpaquePointer
    private let template: OpaquePointer
    // protected by: the mutex; a context taken out belongs to that thread until returned.
    private let idle = Mutex<[MACContext]>([])

    /// A keyed context owned by the pool.
    private final class MACContext: @unchecked Sendable {
        // @unchecked: used by one thread at a time, handed over under the pool's mutex.
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { EVP_MAC_CTX_free(pointer) }
    }

    init(_ key: [UInt8]) throws(SessionConfigurationError) {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            throw SessionConfigurationError("OpenSSL has no HMAC (EVP_MAC_fetch)")
        }
        guard let template = EVP_MAC_CTX_new(mac) else {
            EVP_MAC_free(mac)
            throw SessionConfigurationError("EVP_MAC_CTX_new failed")
        }
        // An OSSL_PARAM keeps pointers to its key and value, which EVP_MAC_init
        // reads later: both must live in buffers that outlast that call. (A
        // Swift string passed straight to the constructor is a temporary freed
        // right after it, which AddressSanitizer reported as a use after free.)
        var parameterKey = Array("digest".utf8CString)
        var digest = Array("SHA256".utf8CString)
        let ok = parameterKey.withUnsafeMutableBufferPointer { keyName -> Bool in
            digest.withUnsafeMutableBufferPointer { name -> Bool in
                guard let keyName = keyName.baseAddress else { return false }
                let parameters = [OSSL_PARAM_construct_utf8_string(keyName, name.baseAddress, 0), OSSL_PARAM_construct_end()]
                return key.withUnsafeBufferPointer { keyBuffer in
                    parameters.withUnsafeBufferPointer { EVP_MAC_init(template, keyBuffer.baseAddress, keyBuffer.count, $0.baseAddress) == 1 }
                }
            }
        }
        guard ok else {
            EVP_MAC_CTX_free(template)
            EVP_MAC_free(mac)
            throw SessionConfigurationError("EVP_MAC_init(HMAC-SHA256) failed")
        }
        self.mac = mac
        self.template = template
    }

    deinit {
        idle.withLock { $0.removeAll() }
        EVP_MAC_CTX_free(template)
        EVP_MAC_free(mac)
    }

    /// HMAC-SHA256 of the concatenation of the parts.
    ///
    /// Up to three parts, not a variadic list: an array of arrays cost a
    /// run-time metadata lookup on every call.
    func authenticate(_ first: [UInt8], _ second: [UInt8] = [], _ third: [UInt8] = []) -> [UInt8] {
        let context: MACContext
        if let pooled = idle.withLock({ $0.popLast() }) {
            context = pooled
            // Re-initialize with the key the context already holds.
            guard EVP_MAC_init(context.pointer, nil, 0, nil) == 1 else { preconditionFailure("EVP_MAC_init (reset) failed") }
        } else {
            guard let copy = EVP_MAC_CTX_dup(template) else { preconditionFailure("EVP_MAC_CTX_dup: out of memory") }
            context = MACContext(copy)
        }
        let update = { (part: [UInt8]) -> Bool in
            part.isEmpty || part.withUnsafeBufferPointer { EVP_MAC_update(context.pointer, $0.baseAddress, $0.count) == 1 }
        }
        var ok = update(first) && update(second) && update(third)
        var out = [UInt8].zeroed(count: 32)
        var length = 0
        ok = ok && out.withUnsafeMutableBufferPointer { EVP_MAC_final(context.pointer, $0.baseAddress, &length, 32) == 1 }
        // A keyed HMAC-SHA256 over memory we own cannot fail short of memory exhaustion.
        guard ok, length == 32 else { preconditionFailure("HMAC-SHA256 failed in libcrypto") }
        idle.withLock { $0.append(context) }
        return out
    }
}

/// The cryptographic primitives sessions need, from OpenSSL's libcrypto.
enum Crypto {
    /// HKDF-SHA256 (RFC 5869): `length` bytes from `key`, `salt` and `info`.
    static func hkdfSHA256(key: [UInt8], salt: [UInt8], info: [UInt8], length: Int) throws(SessionConfigurationError) -> [UInt8] {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else {
            throw SessionConfigurationError("OpenSSL has no HKDF (EVP_PKEY_HKDF)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8].zeroed(count: length)
        var outLength = length
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            salt.withUnsafeBufferPointer { saltBuffer in
                info.withUnsafeBufferPointer { infoBuffer in
                    out.withUnsafeMutableBufferPointer { outBuffer in
                        EVP_PKEY_derive_init(context) > 0
                            && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) > 0
                            && EVP_PKEY_CTX_set1_hkdf_salt(context, saltBuffer.baseAddress, Int32(saltBuffer.count)) > 0
                            && EVP_PKEY_CTX_set1_hkdf_key(context, keyBuffer.baseAddress, Int32(keyBuffer.count)) > 0
                            && EVP_PKEY_CTX_add1_hkdf_info(context, infoBuffer.baseAddress, Int32(infoBuffer.count)) > 0
                            && EVP_PKEY_derive(context, outBuffer.baseAddress, &outLength) > 0
                    }
                }
            }
        }
        guard ok, outLength == length else { throw SessionConfigurationError("HKDF-SHA256 failed in OpenSSL") }
        return out
    }

    /// AES-GCM encryption with a 96-bit `nonce`; returns ciphertext followed by the 16-byte tag.
    static func aesGCMSeal(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], associatedData: [UInt8]) -> [UInt8] {
        let context = newCipherContext()
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8].zeroed(count: plaintext.count + 16)
        var length: Int32 = 0
        var total = 0
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            nonce.withUnsafeBufferPointer { nonceBuffer in
                associatedData.withUnsafeBufferPointer { aadBuffer in
                    plaintext.withUnsafeBufferPointer { plainBuffer in
                        out.withUnsafeMutableBufferPointer { outBuffer -> Bool in
                            guard let outBase = outBuffer.baseAddress,
                                  EVP_EncryptInit_ex(context, gcmCipher(keyLength: key.count), nil,
                                                     keyBuffer.baseAddress, nonceBuffer.baseAddress) == 1,
                                  aadBuffer.isEmpty || EVP_EncryptUpdate(
                                      context, nil, &length, aadBuffer.baseAddress, Int32(aadBuffer.count)) == 1,
                                  plainBuffer.isEmpty || EVP_EncryptUpdate(
                                      context, outBase, &length, plainBuffer.baseAddress, Int32(plainBuffer.count)) == 1
                            else { return false }
                            total = plainBuffer.isEmpty ? 0 : Int(length)
                            guard EVP_EncryptFinal_ex(context, outBase + total, &length) == 1 else { return false }
                            total += Int(length)
                            return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, outBase + total) == 1
                        }
                    }
                }
            }
        }
        guard ok, total == plaintext.count else { preconditionFailure("AES-GCM encryption failed in libcrypto") }
        return out
    }

    /// AES-GCM decryption of ciphertext‖tag; `nil` if the tag does not verify.
    static func aesGCMOpen(key: [UInt8], nonce: [UInt8], sealed: [UInt8], associatedData: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 16 else { return nil }
        let context = newCipherContext()
        defer { EVP_CIPHER_CTX_free(context) }
        let cipherCount = sealed.count - 16
        var tag = Array(sealed[cipherCount...])
        // At least one byte, so the output buffer always has an address (GCM
        // writes nothing at the final step, but OpenSSL wants a pointer).
        var out = [UInt8].zeroed(count: max(cipherCount, 1))
        var length: Int32 = 0
        var total = 0
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            nonce.withUnsafeBufferPointer { nonceBuffer in
                associatedData.withUnsafeBufferPointer { aadBuffer in
                    sealed.withUnsafeBufferPointer { sealedBuffer in
                        tag.withUnsafeMutableBufferPointer { tagBuffer in
                            out.withUnsafeMutableBufferPointer { outBuffer -> Bool in
                                guard let outBase = outBuffer.baseAddress,
                                      EVP_DecryptInit_ex(context, gcmCipher(keyLength: key.count), nil,
                                                         keyBuffer.baseAddress, nonceBuffer.baseAddress) == 1,
                                      aadBuffer.isEmpty || EVP_DecryptUpdate(
                                          context, nil, &length, aadBuffer.baseAddress, Int32(aadBuffer.count)) == 1,
                                      cipherCount == 0 || EVP_DecryptUpdate(
                                          context, outBase, &length, sealedBuffer.baseAddress, Int32(cipherCount)) == 1
                                else { return false }
                                total = cipherCount == 0 ? 0 : Int(length)
                                guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, tagBuffer.baseAddress) == 1
                                else { return false }
                                let final = EVP_DecryptFinal_ex(context, outBase + total, &length)
                                total += Int(length)
                                return final > 0
                            }
                        }
                    }
                }
            }
        }
        guard ok, total == cipherCount else {
            cleanse(&out)
            return nil
        }
        if out.count > cipherCount { out.removeLast(out.count - cipherCount) }
        return out
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    ///
    /// Short requests (session ids, nonces, CSRF tokens) are served from a
    /// block of 4 KiB drawn with one `RAND_bytes` call: a call costs about
    /// 8,000 instructions (DRBG locking and bookkeeping), more than the rest
    /// of minting a session. Every byte is handed out once. The block is
    /// dropped if the process id changes, so a forked child never repeats
    /// its parent's bytes.
    static func randomBytes(_ count: Int) -> [UInt8] {
        guard count <= RandomBlock.size / 8 else { return freshRandomBytes(count) }
        let pid = getpid()
        return randomBlock.withLock { block in
            if block.owner != pid || block.used + count > block.bytes.count {
                block = RandomBlock(bytes: freshRandomBytes(RandomBlock.size), used: 0, owner: pid)
            }
            defer { block.used += count }
            return Array(block.bytes[block.used..<(block.used + count)])
        }
    }

    private struct RandomBlock {
        static let size = 4096
        var bytes: [UInt8]
        var used: Int
        var owner: pid_t
    }

    // protected by: the mutex; bytes before `used` have been handed out.
    private static let randomBlock = Mutex(RandomBlock(bytes: [], used: 0, owner: 0))

    private static func freshRandomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8].zeroed(count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) == 1 }
        // A CSPRNG that cannot seed is no place to mint session ids from.
        guard ok else { preconditionFailure("RAND_bytes failed: OpenSSL's random generator is not seeded") }
        return out
    }

    /// Compares in time that depends only on the length, not on where the bytes differ.
    /// scrypt of `password` with `salt`: N = 2^`logN`, block size `r`,
    /// parallelism `p`; `nil` if libcrypto refuses the parameters (or the
    /// memory they need, 128·r·N bytes, past `maximumMemory`).
    static func scrypt(password: [UInt8], salt: [UInt8], logN: Int, r: Int, p: Int, length: Int,
                       maximumMemory: Int) -> [UInt8]? {
        guard (1...30).contains(logN), r >= 1, p >= 1, length >= 1 else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBufferPointer { pass in
            salt.withUnsafeBufferPointer { saltBuffer in
                out.withUnsafeMutableBufferPointer { key in
                    pass.withMemoryRebound(to: CChar.self) { passChars in
                        EVP_PBE_scrypt(passChars.baseAddress, pass.count, saltBuffer.baseAddress, saltBuffer.count,
                                       UInt64(1) << UInt64(logN), UInt64(r), UInt64(p), UInt64(maximumMemory),
                                       key.baseAddress, length) == 1
                    }
                }
            }
        }
        return ok ? out : nil
    }

    /// PBKDF2-HMAC-SHA256 of `password` with `salt`, `iterations` rounds; `nil` if libcrypto fails.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int) -> [UInt8]? {
        guard iterations >= 1, length >= 1, let digest = EVP_sha256() else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBufferPointer { pass in
            salt.withUnsafeBufferPointer { saltBuffer in
                out.withUnsafeMutableBufferPointer { key in
                    pass.withMemoryRebound(to: CChar.self) { passChars in
                        PKCS5_PBKDF2_HMAC(passChars.baseAddress, Int32(clamping: pass.count), saltBuffer.baseAddress,
                                          Int32(clamping: saltBuffer.count), Int32(clamping: iterations), digest,
                                          Int32(length), key.baseAddress) == 1
                    }
                }
            }
        }
        return ok ? out : nil
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0 }
        }
    }

    /// Overwrites `bytes` with zeros in a way the compiler keeps.
    static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
        }
    }

    private static func newCipherContext() -> OpaquePointer {
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new: out of memory") }
        return context
    }

    private static func gcmCipher(keyLength: Int) -> OpaquePointer? {
        switch keyLength {
        case 16: EVP_aes_128_gcm()
        case 24: EVP_aes_192_gcm()
        default: EVP_aes_256_gcm()
        }
    }
}

/// SHA-256 over bytes given in pieces, with libcrypto's digest: a body
/// hashed as it arrives, a file's checksum, an ETag.
///
/// ```swift
/// router.post("/upload", options: .streamBody) { request async throws in
///     let hasher = SHA256Hasher()
///     for try await chunk in request.body.chunks { hasher.update(chunk) }
///     return .text(hasher.hexDigest())
/// }
/// ```
///
/// Used by one thread at a time; not `Sendable`.
public final class SHA256Hasher {
    private let context: OpaquePointer

    /// A hasher that has seen nothing yet.
    public init() {
        guard let context = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new: out of memory") }
        // SHA-256 from the default provider cannot fail to initialize short of memory exhaustion.
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { preconditionFailure("EVP_DigestInit_ex(SHA-256) failed") }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Adds `bytes` to what is hashed.
    public func update(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ok = bytes.withUnsafeBufferPointer { EVP_DigestUpdate(context, $0.baseAddress, $0.count) == 1 }
        guard ok else { preconditionFailure("EVP_DigestUpdate failed") }
    }

    /// The 32-byte digest of everything added; the hasher starts over afterwards.
    public func digest() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) == 1 }
        guard ok, length == 32, EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            preconditionFailure("EVP_DigestFinal_ex(SHA-256) failed")
        }
        return out
    }

    /// ``digest()`` as 64 lowercase hex digits.
    public func hexDigest() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest() {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

@available(*, unavailable)
extension SHA256Hasher: Sendable {}
