import Foundation
import GimletBackendSupport
import GimletHTTP
import Logging
import Synchronization

extension SessionConfiguration {
    /// Reads a configuration from a settings dictionary, like the original
    /// Gimlet's `session_factory_from_settings`.
    ///
    /// | key (after `prefix`) | meaning |
    /// | --- | --- |
    /// | `secret` | signing secrets, comma-separated, first signs |
    /// | `secret_file` | a file of signing secrets instead, one per line, first signs (re-read on reload) |
    /// | `encryption_key` | hex AES keys, comma-separated, first encrypts, the others only decrypt |
    /// | `encryption_key_file` | a file of hex AES keys instead, one per line (re-read on reload) |
    /// | `backend` | a backend URL (see `backends`), `memory:` or `none` |
    /// | `permanent` | permanent by default (t/true/y/yes/on/1, f/false/n/no/off/0) |
    /// | `clientside` | client-side by default (same booleans) |
    /// | `cookie_name_permanent`, `cookie_name_session` | cookie names |
    /// | `cookie_domain`, `cookie_path`, `cookie_samesite` | cookie attributes |
    /// | `cookie_secure` | `auto` (Secure over HTTPS, the default) or `always` (behind a proxy that ends TLS; needed by `__Host-` names) |
    /// | `permanent_max_age`, `permanent_ttl`, `session_ttl`, `renew_after`, `absolute_lifetime` | seconds |
    /// | `public_origins` | the site's public origins, comma-separated (`https://example.com`), for CSRF's `Origin` check |
    /// | `revocation_check` | `every-request` (default) or `next-server-access`: see ``RevocationCheck`` |
    /// | `max_sessions_per_user` | the most sessions one user may have (100); a login past it signs the oldest out |
    ///
    /// ```swift
    /// let configuration = try SessionConfiguration(settings: [
    ///     "gimlet.secret": "…", "gimlet.backend": "memory:", "gimlet.permanent": "yes",
    /// ])
    /// ```
    ///
    /// - Parameters:
    ///   - settings: the dictionary; keys without `prefix` are ignored.
    ///   - prefix: `gimlet.` by default.
    ///   - backends: turns a backend URL into a backend; the default knows `memory:` and `none`.
    ///   - logger: where a warning goes (a secret given inline rather than in a file), once per process.
    /// - Throws: ``SessionConfigurationError`` naming the key that is wrong.
    public init(
        settings: [String: String], prefix: String = "gimlet.",
        backends: (String) throws -> (any SessionBackend)? = SessionConfiguration.builtInBackend(url:),
        logger: Logger = Request.defaultLogger
    ) throws {
        try self.init(settings: settings, prefix: prefix, backends: backends, logger: logger, unnamedBackend: nil)
    }

    /// The settings form, with what an unset `backend` means: `nil` for no
    /// backend; otherwise the URL it returns is opened (an embedded
    /// default), or the error it throws stops the app.
    init(
        settings: [String: String], prefix: String,
        backends: (String) throws -> (any SessionBackend)?,
        logger: Logger, unnamedBackend: (() throws -> String)?
    ) throws {
        func value(_ key: String) -> String? {
            guard let raw = settings[prefix + key] else { return nil }
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
        func flag(_ key: String) throws -> Bool? {
            guard let raw = value(key) else { return nil }
            switch raw.lowercased() {
            case "t", "true", "y", "yes", "on", "1": return true
            case "f", "false", "n", "no", "off", "0": return false
            default: throw SessionConfigurationError("\(prefix)\(key) must be a boolean (yes/no, true/false, on/off, 1/0), not \(String(reflecting: raw))")
            }
        }
        func seconds(_ key: String) throws -> Int64? {
            guard let raw = value(key) else { return nil }
            guard let number = Int64(raw), number > 0 else {
                throw SessionConfigurationError("\(prefix)\(key) must be a positive number of seconds, not \(String(reflecting: raw))")
            }
            return number
        }
        func list(_ key: String) -> [String] {
            (value(key) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        for (inline, file) in [("secret", "secret_file"), ("encryption_key", "encryption_key_file")]
        where value(inline) != nil && value(file) != nil {
            throw SessionConfigurationError("both \(prefix)\(inline) and \(prefix)\(file) are set; set one (the file keeps the secret out of the environment)")
        }
        let secretFile = value("secret_file"), encryptionKeyFile = value("encryption_key_file")
        let secrets = try secretFile.map { file throws(SessionConfigurationError) in
            try Self.values(in: file, kind: "secret file (\(prefix)secret_file)")
        } ?? list("secret")
        let encryptionKeys = try encryptionKeyFile.map { file throws(SessionConfigurationError) in
            try Self.values(in: file, kind: "encryption key file (\(prefix)encryption_key_file)")
        } ?? list("encryption_key")
        let publicOrigins = try (value("public_origins") ?? "").split(separator: ",").map { raw in
            let text = raw.trimmingCharacters(in: .whitespaces)
            guard let origin = HTTPOrigin(text), origin.scheme == "http" || origin.scheme == "https" else {
                throw SessionConfigurationError("\(prefix)public_origins: \(String(reflecting: text)) is not an origin; write scheme://host[:port], e.g. https://example.com")
            }
            return origin
        }
        let sameSite: SetCookie.SameSite
        switch value("cookie_samesite")?.lowercased() {
        case nil, "lax": sameSite = .lax
        case "strict": sameSite = .strict
        case let other?: throw SessionConfigurationError("\(prefix)cookie_samesite must be lax or strict, not \(String(reflecting: other))")
        }
        let cookieSecure: CookieSecure
        switch value("cookie_secure")?.lowercased() {
        case nil: cookieSecure = .auto
        case let text?:
            guard let parsed = CookieSecure(rawValue: text) else {
                throw SessionConfigurationError("\(prefix)cookie_secure must be auto or always, not \(String(reflecting: text))")
            }
            cookieSecure = parsed
        }
        let revocationCheck: RevocationCheck
        switch value("revocation_check")?.lowercased() {
        case nil, "every-request": revocationCheck = .everyRequest
        case "next-server-access": revocationCheck = .nextServerAccess
        case let other?:
            throw SessionConfigurationError("\(prefix)revocation_check must be every-request or next-server-access, not \(String(reflecting: other))")
        }
        // Everything but the backend is checked first, so a bad secret or key
        // stops the app before a backend is opened (or a file created).
        var configuration = try SessionConfiguration(
            secrets: secrets, encryptionKey: encryptionKeys.first, backend: nil,
            permanentByDefault: try flag("permanent") ?? false, clientsideByDefault: nil,
            permanentCookieName: value("cookie_name_permanent") ?? "gimlet-p",
            sessionCookieName: value("cookie_name_session") ?? "gimlet-n",
            cookieDomain: value("cookie_domain"), cookiePath: value("cookie_path") ?? "/", sameSite: sameSite,
            cookieSecure: cookieSecure,
            permanentMaxAge: try seconds("permanent_max_age") ?? 400 * 86_400,
            permanentTimeToLive: try seconds("permanent_ttl") ?? 400 * 86_400,
            sessionTimeToLive: try seconds("session_ttl") ?? 86_400,
            renewAfter: try seconds("renew_after") ?? 86_400,
            absoluteLifetime: try seconds("absolute_lifetime"), publicOrigins: publicOrigins)
        configuration.clientsideByDefault = try flag("clientside")
        configuration.revocationCheck = revocationCheck
        if let raw = value("max_sessions_per_user") {
            guard let limit = Int(raw), limit >= 1 else {
                throw SessionConfigurationError("\(prefix)max_sessions_per_user must be a whole number of sessions, at least 1, not \(String(reflecting: raw))")
            }
            configuration.maximumSessionsPerUser = limit
        }
        configuration.retiredEncryptionKeys = Array(encryptionKeys.dropFirst())
        configuration.secretFile = secretFile
        configuration.encryptionKeyFile = encryptionKeyFile
        configuration.backend = try (value("backend") ?? unnamedBackend?()).flatMap(backends)
        try configuration.validate()
        // Said only once the configuration works: a start-up error stays one line.
        for (inline, file) in [("secret", "secret_file"), ("encryption_key", "encryption_key_file")] where value(inline) != nil {
            Self.warnOnce(about: prefix + inline, file: prefix + file, logger: logger)
        }
        self = configuration
    }

    /// Reads the configuration from `GIMLET_*` environment variables: the
    /// settings keys above, upper-cased, after `GIMLET_` (`GIMLET_SECRET`,
    /// `GIMLET_SECRET_FILE`, `GIMLET_ENCRYPTION_KEY`, `GIMLET_BACKEND`, `GIMLET_PERMANENT`, …).
    ///
    /// `GIMLET_BACKEND` must be set (`none` for no store at all): an app
    /// whose sessions have an embedded default store uses
    /// ``init(environment:backends:)-(_,SessionBackends)`` with the backends it links.
    ///
    /// - Parameters:
    ///   - environment: the process's environment, or any dictionary of variables.
    ///   - backends: turns a backend URL into a backend; the default knows `memory:` and `none`.
    ///   - logger: where a warning goes (a secret given inline rather than in a file), once per process.
    /// - Throws: ``SessionConfigurationError`` naming the variable that is wrong or missing.
    public init(
        environment: [String: String],
        backends: (String) throws -> (any SessionBackend)? = SessionConfiguration.builtInBackend(url:),
        logger: Logger = Request.defaultLogger
    ) throws {
        try self.init(environment: environment, backends: backends, logger: logger) {
            throw SessionConfigurationError(
                "GIMLET_BACKEND is not set: name where server-side keys live (a store's URL, or memory:), or set GIMLET_BACKEND=none to keep every key in the cookie")
        }
    }

    private init(
        environment: [String: String], backends: (String) throws -> (any SessionBackend)?, logger: Logger,
        unnamedBackend: @escaping () throws -> String
    ) throws {
        var settings: [String: String] = [:]
        for (key, value) in environment where key.hasPrefix("GIMLET_") {
            settings["GIMLET_" + key.dropFirst(7).lowercased()] = value
        }
        do {
            try self.init(settings: settings, prefix: "GIMLET_", backends: backends, logger: logger, unnamedBackend: unnamedBackend)
        } catch let error as SessionConfigurationError {
            // Name variables as they are spelled in the environment.
            throw SessionConfigurationError(Self.upperCasingVariableNames(error.message))
        }
    }

    /// Reads the configuration from `GIMLET_*` environment variables, as
    /// ``init(environment:backends:logger:)`` does, opening the backend
    /// among `backends` and logging to their logger (the host's).
    ///
    /// With `GIMLET_BACKEND` unset, sessions go to the embedded default
    /// among `backends`: with `.sqlite`, the file `sessions.sqlite` in
    /// `GIMLET_DATA_DIR` (`data` under the working directory when that is
    /// unset too). Without one, the app stops with a line saying what to
    /// set; `GIMLET_BACKEND=none` keeps every key in the cookie. Either way
    /// one log line says where sessions go.
    ///
    /// ```swift
    /// Host.main { environment, logger in
    ///     var router = Router()
    ///     router.use(try SessionMiddleware(SessionConfiguration(
    ///         environment: environment, backends: SessionBackends(.sqlite, .redis, logger: logger))))
    ///     return router
    /// }
    /// ```
    ///
    /// - Throws: ``SessionConfigurationError`` naming the variable that is wrong or missing.
    public init(environment: [String: String], backends: SessionBackends) throws {
        let named = environment["GIMLET_BACKEND"].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        let embedded = named == nil ? backends.embeddedDefaultURL(environment: environment) : nil
        // A store that cannot start is named by the variable that chose it.
        let source = named != nil ? "GIMLET_BACKEND"
            : "GIMLET_BACKEND is unset, so the embedded default in GIMLET_DATA_DIR (\(environment["GIMLET_DATA_DIR"].map { $0.isEmpty ? "empty" : $0 } ?? "unset: ./data")); set GIMLET_DATA_DIR to a directory this user can write, or GIMLET_BACKEND"
        try self.init(environment: environment, backends: { url in
            do { return try backends.open(url: url) } catch let error as SessionConfigurationError {
                throw SessionConfigurationError("\(error.message) (\(source))")
            }
        }, logger: backends.logger) {
            guard let embedded else {
                throw SessionConfigurationError(
                    "GIMLET_BACKEND is not set, and this app links no embedded store: name where server-side keys live (\(backends.acceptedForms)), or set GIMLET_BACKEND=none to keep every key in the cookie")
            }
            return embedded
        }
        let url = BackendURLRedaction.redacted(named ?? embedded ?? "none")
        if backend == nil {
            backends.logger.info("sessions: no store (GIMLET_BACKEND=none): every key is kept in the cookie")
        } else if named == nil {
            backends.logger.info("sessions: \(url), the embedded default (GIMLET_BACKEND is unset; GIMLET_DATA_DIR sets the directory)")
        } else {
            backends.logger.info("sessions: \(url) (GIMLET_BACKEND)")
        }
    }

    /// The backends this module knows: `memory:` and `none`.
    ///
    /// - Throws: ``SessionConfigurationError`` listing the accepted forms.
    public static func builtInBackend(url: String) throws -> (any SessionBackend)? {
        try builtInBackend(url: url, logger: Request.defaultLogger)
    }

    /// The same, the memory backend logging to `logger`.
    static func builtInBackend(url: String, logger: Logger) throws -> (any SessionBackend)? {
        switch url {
        case "none": return nil
        case "memory:", "memory": return MemoryBackend(logger: logger)
        default:
            throw SessionConfigurationError("unknown session backend \(String(reflecting: BackendURLRedaction.redacted(url))); accepted: memory:, none")
        }
    }

    // protected by: atomic exchange; set once per process.
    private static let warnedAboutInlineSecrets = Atomic<Bool>(false)

    /// Says once per process that a secret came inline (the environment, a
    /// command line, a settings dictionary) rather than from a file.
    private static func warnOnce(about setting: String, file: String, logger: Logger) {
        guard !warnedAboutInlineSecrets.exchange(true, ordering: .relaxed) else { return }
        let (name, fileName) = setting.hasPrefix("GIMLET_") ? (setting.uppercased(), file.uppercased()) : (setting, file)
        logger.warning("the session secret or key is given in \(name): anything this user runs can read the environment and command line of the app (/proc/PID/environ, ps); put it in a file readable by the app's user alone and name the file in \(fileName)")
    }

    private static func upperCasingVariableNames(_ message: String) -> String {
        guard let range = message.range(of: "GIMLET_") else { return message }
        let tail = message[range.upperBound...]
        let nameEnd = tail.firstIndex(where: { !($0.isLetter || $0 == "_") }) ?? tail.endIndex
        return message[..<range.upperBound] + tail[..<nameEnd].uppercased() + tail[nameEnd...]
    }
}
