import GimletHTTP

/// How sessions are signed, encrypted, stored and sent.
///
/// ```swift
/// var configuration = try SessionConfiguration(
///     secrets: [ProcessInfo.processInfo.environment["GIMLET_SECRET"] ?? ""],
///     backend: MemoryBackend())
/// configuration.permanentByDefault = true
/// router.use(try SessionMiddleware(configuration))
/// ```
///
/// Checked when the middleware is created (``validate()``), so a bad
/// configuration stops the app before its first request.
public struct SessionConfiguration: Sendable {
    /// Signing secrets: the first signs, every one verifies (rotation: put the
    /// new secret first, keep the old one until old cookies have expired).
    public var secrets: [String]
    /// Hex AES key (32, 48 or 64 hex digits for AES-128/192/256-GCM): when set,
    /// client-side values are encrypted, not only signed.
    public var encryptionKey: String?
    /// Earlier encryption keys: cookies encrypted under them still open (and
    /// are re-issued under ``encryptionKey``); nothing new is encrypted with them.
    public var retiredEncryptionKeys: [String] = []
    /// A file of signing secrets, one per line, the first signing (blank
    /// lines and lines starting with `#` ignored): read into ``secrets`` by
    /// ``readSecretFiles()``, again on every reload (`SIGHUP`), so a
    /// rotation needs no restart and no secret sits in the environment.
    public var secretFile: String?
    /// A file of hex encryption keys, one per line, the first encrypting,
    /// the others retired (read like ``secretFile``).
    public var encryptionKeyFile: String?
    /// Where server-side keys live; `nil` keeps everything in the cookies.
    public var backend: (any SessionBackend)?
    /// Whether keys go to the permanent channel when `set` is not told.
    public var permanentByDefault: Bool
    /// Whether keys go in the cookie when `set` is not told; `nil` means
    /// "client-side exactly when there is no backend".
    public var clientsideByDefault: Bool?
    /// The permanent channel's cookie name.
    public var permanentCookieName: String
    /// The browser-session channel's cookie name.
    public var sessionCookieName: String
    /// The cookies' `Domain`; host-only when `nil`.
    public var cookieDomain: String?
    /// The cookies' `Path`.
    public var cookiePath: String
    /// The cookies' `SameSite`.
    public var sameSite: SetCookie.SameSite
    /// When the cookies carry `Secure`: ``CookieSecure/auto`` (the default)
    /// when the request came over HTTPS as the web server says; ``CookieSecure/always``
    /// behind a proxy that ends TLS before the web server (and required by
    /// `__Host-` and `__Secure-` cookie names).
    public var cookieSecure: CookieSecure
    /// `Max-Age` of the permanent cookie, in seconds (400 days: the most a browser keeps).
    public var permanentMaxAge: Int64
    /// Idle lifetime of the permanent channel's server-side data, in seconds.
    public var permanentTimeToLive: Int64
    /// Idle lifetime of the browser-session channel's server-side data, in seconds.
    public var sessionTimeToLive: Int64
    /// Seconds after which a cookie is re-issued and its server-side expiry renewed
    /// (at most half the channel's idle lifetime is used).
    public var renewAfter: Int64
    /// An absolute lifetime: a channel older than this (from its creation) starts over,
    /// however active it is. `nil` for none.
    public var absoluteLifetime: Int64?
    /// The site's public origins, such as `https://example.com`, accepted in
    /// an unsafe request's `Origin` besides the one the request itself was
    /// addressed to (`Request.origin`). Needed only where the web
    /// server cannot tell the public origin: behind a TLS-terminating proxy
    /// or a port mapping.
    public var publicOrigins: [HTTPOrigin]
    /// The time source.
    public var clock: any SessionClock
    /// When revoking a user's sessions (``SessionRegistry``) takes effect
    /// for a session bound to that user; ``RevocationCheck/everyRequest`` by default.
    public var revocationCheck: RevocationCheck = .everyRequest
    /// The most sessions one user may have (``Session/bind(toUser:recording:)``):
    /// a login past it signs the least recently seen ones out. 100 by default.
    public var maximumSessionsPerUser = 100

    /// Creates a configuration; every parameter but the secrets has a safe default.
    ///
    /// - Throws: ``SessionConfigurationError`` from ``validate()``.
    public init(
        secrets: [String], encryptionKey: String? = nil, backend: (any SessionBackend)? = nil,
        permanentByDefault: Bool = false, clientsideByDefault: Bool? = nil,
        permanentCookieName: String = "gimlet-p", sessionCookieName: String = "gimlet-n",
        cookieDomain: String? = nil, cookiePath: String = "/", sameSite: SetCookie.SameSite = .lax,
        cookieSecure: CookieSecure = .auto,
        permanentMaxAge: Int64 = 400 * 86_400, permanentTimeToLive: Int64 = 400 * 86_400,
        sessionTimeToLive: Int64 = 86_400, renewAfter: Int64 = 86_400, absoluteLifetime: Int64? = nil,
        publicOrigins: [HTTPOrigin] = [], clock: any SessionClock = SystemClock()
    ) throws {
        self.secrets = secrets
        self.encryptionKey = encryptionKey
        self.backend = backend
        self.permanentByDefault = permanentByDefault
        self.clientsideByDefault = clientsideByDefault
        self.permanentCookieName = permanentCookieName
        self.sessionCookieName = sessionCookieName
        self.cookieDomain = cookieDomain
        self.cookiePath = cookiePath
        self.sameSite = sameSite
        self.cookieSecure = cookieSecure
        self.permanentMaxAge = permanentMaxAge
        self.permanentTimeToLive = permanentTimeToLive
        self.sessionTimeToLive = sessionTimeToLive
        self.renewAfter = renewAfter
        self.absoluteLifetime = absoluteLifetime
        self.publicOrigins = publicOrigins
        self.clock = clock
        try validate()
    }

    /// Whether keys are client-side by default, after applying the backend rule.
    public var resolvedClientsideDefault: Bool { clientsideByDefault ?? (backend == nil) }

    /// Checks every field.
    ///
    /// - Throws: ``SessionConfigurationError`` saying what is wrong and how to fix it.
    public func validate() throws(SessionConfigurationError) {
        guard !secrets.isEmpty else {
            throw SessionConfigurationError("no session secret: set GIMLET_SECRET (or --secret) to a long random string, e.g. `openssl rand -hex 32`, or GIMLET_SECRET_FILE to a file holding one")
        }
        for secret in secrets where secret.utf8.count < 16 {
            throw SessionConfigurationError("a session secret is shorter than 16 bytes; use a long random string, e.g. `openssl rand -hex 32`")
        }
        if let encryptionKey { _ = try Self.decodeEncryptionKey(encryptionKey) }
        for key in retiredEncryptionKeys { _ = try Self.decodeEncryptionKey(key) }
        if !retiredEncryptionKeys.isEmpty, encryptionKey == nil {
            throw SessionConfigurationError("retired encryption keys without a current one: put the key to encrypt with first")
        }
        if backend == nil, clientsideByDefault == false {
            throw SessionConfigurationError("cannot default to clientside=false with no backend: name a backend or drop the clientside default")
        }
        for name in [permanentCookieName, sessionCookieName] {
            guard (try? SetCookie(name: name, value: "").headerValue()) != nil else {
                throw SessionConfigurationError("cookie name \(String(reflecting: name)) is not a valid cookie name")
            }
        }
        guard permanentCookieName != sessionCookieName else {
            throw SessionConfigurationError("the two session cookies need different names")
        }
        guard (try? SetCookie(name: "x", value: "", path: cookiePath, domain: cookieDomain).headerValue()) != nil else {
            throw SessionConfigurationError("cookie path \(String(reflecting: cookiePath)) or domain \(String(reflecting: cookieDomain ?? "")) is not valid in a cookie")
        }
        for name in [permanentCookieName, sessionCookieName] {
            if name.hasPrefix("__Host-"), cookieSecure != .always || cookiePath != "/" || cookieDomain != nil {
                throw SessionConfigurationError("cookie name \(name) starts with __Host-, which browsers keep only with Secure, Path=/ and no Domain: set cookie_secure=always (GIMLET_COOKIE_SECURE=always), keep cookie_path / and set no cookie_domain")
            }
            if name.hasPrefix("__Secure-"), cookieSecure != .always {
                throw SessionConfigurationError("cookie name \(name) starts with __Secure-, which browsers keep only with Secure: set cookie_secure=always (GIMLET_COOKIE_SECURE=always)")
            }
        }
        if sameSite == .none {
            throw SessionConfigurationError("SameSite=None needs Secure cookies, which Gimlet sets per request; use lax or strict")
        }
        for (name, value) in [("permanent max-age", permanentMaxAge), ("permanent TTL", permanentTimeToLive),
                              ("session TTL", sessionTimeToLive), ("renew-after", renewAfter)] where value <= 0 {
            throw SessionConfigurationError("the \(name) must be a positive number of seconds")
        }
        if maximumSessionsPerUser < 1 {
            throw SessionConfigurationError("the most sessions per user must be at least 1")
        }
        if let absoluteLifetime, absoluteLifetime <= 0 {
            throw SessionConfigurationError("the absolute lifetime must be a positive number of seconds")
        }
    }

    /// The raw AES key from its hex form.
    static func decodeEncryptionKey(_ hex: String) throws(SessionConfigurationError) -> [UInt8] {
        let advice = "an encryption key is 64 hex digits (AES-256; 32 or 48 for AES-128/192): make one with `openssl rand -hex 32`"
        guard [32, 48, 64].contains(hex.utf8.count) else {
            throw SessionConfigurationError("encryption key has \(hex.utf8.count) characters; \(advice)")
        }
        guard let bytes = Hex.decode(hex) else {
            throw SessionConfigurationError("encryption key is not hexadecimal; \(advice)")
        }
        return bytes
    }
}

/// When session cookies carry the `Secure` attribute.
public enum CookieSecure: String, Sendable, Equatable {
    /// When the request came over HTTPS, as the web server passes it (`HTTPS=on`).
    case auto
    /// Always: for a site served only over HTTPS, where TLS may end before the
    /// web server (a load balancer talking plain HTTP to nginx).
    case always
}

/// A session configuration that cannot work, with how to fix it.
public struct SessionConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and how to fix it.
    public let message: String

    /// An error saying `message`.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
