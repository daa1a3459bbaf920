import Dispatch
import Foundation
@_spi(GimletInlined) import GimletSystem

/// Password hashing for sign-in, on OpenSSL's libcrypto: scrypt by default,
/// PBKDF2-HMAC-SHA256 where scrypt's memory is not to be had.
///
/// A hash is a self-describing PHC string, its parameters and salt inside,
/// so the cost can be raised later: ``needsRehash(_:)`` says when a stored
/// hash was made with other parameters, and the app hashes the password
/// again at the next successful sign-in.
///
/// ```swift
/// let hasher = PasswordHasher()
/// let stored = try hasher.hash("correct horse battery staple")   // "$scrypt$ln=15,r=8,p=1$…$…"
/// if try hasher.verify("correct horse battery staple", against: stored) {
///     if hasher.needsRehash(stored) { save(try hasher.hash(password)) }
///     try request.session.bind(toUser: account.id)
/// }
/// ```
///
/// One hash takes tens of milliseconds on purpose (the README's Performance
/// section has the figure), on the calling worker thread: other requests go
/// on on the other threads. At most as many hashes as the machine has cores
/// run at once in a process; a hash past that waits for one to finish, so a
/// burst of sign-ins cannot take scrypt's memory many times over.
public struct PasswordHasher: Sendable, Equatable {
    /// How a password is hashed.
    public enum Algorithm: Sendable, Equatable {
        /// scrypt with N = 2^`logN`, block size `r` and parallelism `p`:
        /// memory-hard, 128·r·N bytes per hash (32 MiB with the defaults).
        case scrypt(logN: Int, r: Int, p: Int)
        /// PBKDF2-HMAC-SHA256 with `iterations` rounds: the fallback where
        /// memory is scarce or another system must verify the hashes.
        case pbkdf2SHA256(iterations: Int)

        /// scrypt, N = 2^15, r = 8, p = 1.
        public static let recommended = Algorithm.scrypt(logN: 15, r: 8, p: 1)
        /// PBKDF2-HMAC-SHA256 with 600,000 rounds (OWASP's figure for it).
        public static let recommendedPBKDF2 = Algorithm.pbkdf2SHA256(iterations: 600_000)
    }

    /// The algorithm and cost new hashes are made with.
    public var algorithm: Algorithm

    /// The longest password accepted, in bytes of UTF-8; longer ones are an error (a form's 400).
    public static let maximumPasswordBytes = 1024
    /// The most memory one scrypt hash may use, 128 MiB: a stored hash that
    /// asks for more (written by hand or by an attacker) is refused.
    public static let maximumMemory = 128 << 20
    static let saltBytes = 16
    static let hashBytes = 32

    /// A hasher that makes new hashes with `algorithm`.
    public init(algorithm: Algorithm = .recommended) {
        self.algorithm = algorithm
    }

    /// A new PHC string for `password`, with a fresh random salt.
    ///
    /// - Throws: ``PasswordHasherError`` for a password over
    ///   ``maximumPasswordBytes`` or parameters libcrypto refuses.
    public func hash(_ password: String) throws(PasswordHasherError) -> String {
        let salt = Crypto.randomBytes(Self.saltBytes)
        let parsed = PHC(algorithm: algorithm, salt: salt, hash: [])
        var derived = try derive(password, parsed, length: Self.hashBytes)
        defer { Crypto.cleanse(&derived) }
        return PHC(algorithm: algorithm, salt: salt, hash: derived).text
    }

    /// Whether `password` matches `hash` (a PHC string from ``hash(_:)``,
    /// with whatever parameters it was made), compared in constant time.
    ///
    /// - Throws: ``PasswordHasherError`` when `hash` is not a PHC string this
    ///   hasher reads, or asks for more than ``maximumMemory``; a wrong password is `false`.
    public func verify(_ password: String, against hash: String) throws(PasswordHasherError) -> Bool {
        let stored = try PHC(parsing: hash)
        var derived = try derive(password, stored, length: stored.hash.count)
        defer { Crypto.cleanse(&derived) }
        return Crypto.constantTimeEquals(derived, stored.hash)
    }

    /// Whether `hash` was made with other parameters than ``algorithm``
    /// (or cannot be read): hash the password again at the next sign-in.
    public func needsRehash(_ hash: String) -> Bool {
        guard let stored = try? PHC(parsing: hash) else { return true }
        return stored.algorithm != algorithm || stored.hash.count != Self.hashBytes
    }

    private func derive(_ password: String, _ phc: PHC, length: Int) throws(PasswordHasherError) -> [UInt8] {
        var bytes = Array(password.utf8)
        defer { Crypto.cleanse(&bytes) }
        guard bytes.count <= Self.maximumPasswordBytes else {
            throw PasswordHasherError("a password longer than \(Self.maximumPasswordBytes) bytes is refused")
        }
        Self.slots.wait()
        defer { Self.slots.signal() }
        let derived: [UInt8]?
        switch phc.algorithm {
        case .scrypt(let logN, let r, let p):
            derived = Crypto.scrypt(password: bytes, salt: phc.salt, logN: logN, r: r, p: p, length: length,
                                    maximumMemory: Self.maximumMemory + (1 << 20))
        case .pbkdf2SHA256(let iterations):
            derived = Crypto.pbkdf2SHA256(password: bytes, salt: phc.salt, iterations: iterations, length: length)
        }
        guard let derived else { throw PasswordHasherError("libcrypto refused the hash's parameters") }
        return derived
    }

    /// As many hashes at once as there are cores, per process.
    private static let slots = DispatchSemaphore(value: max(1, activeProcessorCount()))
}

/// A password hash that cannot be made or read, with why.
public struct PasswordHasherError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What is wrong.
    public let message: String

    /// An error saying `message`.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// A PHC string: `$scrypt$ln=15,r=8,p=1$SALT$HASH` or
/// `$pbkdf2-sha256$i=600000$SALT$HASH`, salt and hash in unpadded base64.
struct PHC: Equatable {
    var algorithm: PasswordHasher.Algorithm
    var salt: [UInt8]
    var hash: [UInt8]

    /// Bounds on what a stored hash may ask for, so a forged one cannot make a verification run for ever.
    static let maximumIterations = 10_000_000
    static let maximumParallelism = 16

    init(algorithm: PasswordHasher.Algorithm, salt: [UInt8], hash: [UInt8]) {
        self.algorithm = algorithm
        self.salt = salt
        self.hash = hash
    }

    init(parsing text: String) throws(PasswordHasherError) {
        func fail(_ why: String) -> PasswordHasherError { PasswordHasherError("not a password hash this hasher reads: \(why)") }
        guard text.utf8.count <= 512 else { throw fail("longer than 512 bytes") }
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty else { throw fail("a PHC string has the form $algorithm$parameters$salt$hash") }
        var parameters: [Substring: Int] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[1].count <= 9, let value = Int(parts[1]), value > 0, parameters[parts[0]] == nil else {
                throw fail("parameter \(String(reflecting: String(pair)))")
            }
            parameters[parts[0]] = value
        }
        switch fields[1] {
        case "scrypt":
            guard parameters.count == 3, let logN = parameters["ln"], let r = parameters["r"], let p = parameters["p"],
                  (1...30).contains(logN), r <= 64, p <= Self.maximumParallelism,
                  128 * r * (1 << logN) <= PasswordHasher.maximumMemory
            else { throw fail("scrypt needs ln, r and p, using at most \(PasswordHasher.maximumMemory >> 20) MiB") }
            algorithm = .scrypt(logN: logN, r: r, p: p)
        case "pbkdf2-sha256":
            guard parameters.count == 1, let iterations = parameters["i"], iterations <= Self.maximumIterations else {
                throw fail("pbkdf2-sha256 needs i, at most \(Self.maximumIterations)")
            }
            algorithm = .pbkdf2SHA256(iterations: iterations)
        default:
            throw fail("unknown algorithm \(String(reflecting: String(fields[1])))")
        }
        guard let salt = Self.decode(fields[3]), (8...64).contains(salt.count),
              let hash = Self.decode(fields[4]), (16...64).contains(hash.count)
        else { throw fail("salt (8 to 64 bytes) and hash (16 to 64 bytes) must be unpadded base64") }
        self.salt = salt
        self.hash = hash
    }

    var text: String {
        let parameters = switch algorithm {
        case .scrypt(let logN, let r, let p): "$scrypt$ln=\(logN),r=\(r),p=\(p)"
        case .pbkdf2SHA256(let iterations): "$pbkdf2-sha256$i=\(iterations)"
        }
        return parameters + "$" + Self.encode(salt) + "$" + Self.encode(hash)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().prefix { $0 != "=" })
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        guard !text.isEmpty, !text.contains("="), text.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        let padded = String(text) + String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        return Data(base64Encoded: padded).map { Array($0) }
    }
}
