import Gimlet
import GimletBackendSupport
import GimletHTTP

extension PostgreSQLSessionBackend.Configuration {
    /// Reads a backend URL:
    /// `postgresql://[user[:password]@]host[:port]/db[?table=gimlet_sessions&sslmode=…&connect_timeout=…]`,
    /// or on a unix socket `postgresql:///db?host=/var/run/postgresql`
    /// (`postgres://` works too).
    ///
    /// Options: `table`, `timeout_ms`, `max_connections`, `sweep_interval`
    /// (Gimlet's), and libpq's `host`, `port`, `user`, `password`,
    /// `sslmode`, `sslrootcert`, `connect_timeout`, `application_name`.
    ///
    /// - Throws: `SessionConfigurationError` saying which part is wrong.
    public init(url: String) throws {
        func fail(_ what: String) -> SessionConfigurationError {
            SessionConfigurationError("postgresql URL \(String(reflecting: BackendURLRedaction.redacted(url))): \(what)")
        }
        guard let scheme = ["postgresql://", "postgres://"].first(where: { url.hasPrefix($0) }) else {
            throw fail("not a postgresql:// URL")
        }
        var rest = url.dropFirst(scheme.count)
        var query: [(name: String, value: String)] = []
        if let question = rest.firstIndex(of: "?") {
            query = try BackendURLQuery.options(rest[rest.index(after: question)...], url: url)
            rest = rest[..<question]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw fail("needs a database name, as in postgresql://host/app") }
        let database = PercentDecoding.decode(rest[rest.index(after: slash)...], plusAsSpace: false) ?? ""
        guard !database.isEmpty, !database.contains("/") else { throw fail("needs a database name, as in postgresql://host/app") }
        var authority = rest[..<slash]
        var parameters: [(String, String)] = []
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let user = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? userInfo
            if !user.isEmpty { parameters.append(("user", decoded(user))) }
            if let colon = userInfo.firstIndex(of: ":") {
                parameters.append(("password", decoded(userInfo[userInfo.index(after: colon)...])))
            }
        }
        if !authority.isEmpty {
            var host = authority
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                guard let port = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(port) else {
                    throw fail("port must be a number from 1 to 65535")
                }
                parameters.append(("port", String(port)))
            }
            guard !host.isEmpty else { throw fail("no host before the port") }
            parameters.append(("host", String(host)))
        }
        parameters.append(("dbname", database))
        self.init(parameters: parameters)
        let libpqOptions: Set = ["host", "port", "user", "password", "sslmode", "sslrootcert", "connect_timeout", "application_name"]
        for (name, value) in query {
            func positive() throws -> Int {
                guard let number = Int(value), number > 0 else { throw fail("\(name) must be a positive number") }
                return number
            }
            switch name {
            case "table":
                guard PostgreSQLSessionBackend.isPlainIdentifier(value) else {
                    throw fail("table must be a lower-case identifier (letters, digits, _), at most 40 characters")
                }
                table = value
            case "timeout_ms": timeoutMilliseconds = try positive()
            case "max_connections": maxConnections = try positive()
            case "sweep_interval":
                guard let number = Int(value), number >= 0 else { throw fail("sweep_interval must be a number of seconds (0: never)") }
                sweepInterval = number
            case _ where libpqOptions.contains(name):
                self.parameters.removeAll { $0.0 == name }
                self.parameters.append((name, value))
            default:
                throw fail("unknown option \(String(reflecting: name)); known: table, timeout_ms, max_connections, sweep_interval, \(libpqOptions.sorted().joined(separator: ", "))")
            }
        }
        // A server that does not answer must not hold a request for libpq's default (for ever).
        if parameter("connect_timeout") == nil {
            self.parameters.append(("connect_timeout", String(max(1, timeoutMilliseconds / 1000))))
        }
    }
}

/// Percent-decoded user info; malformed escapes are kept as written.
private func decoded(_ text: Substring) -> String {
    PercentDecoding.decode(text, plusAsSpace: false) ?? String(text)
}

extension SessionBackendOpener {
    /// `postgresql://[user[:password]@]host[:port]/db[?table=…]` and
    /// `postgresql:///db?host=/var/run/postgresql`: ``PostgreSQLSessionBackend``.
    public static var postgresql: SessionBackendOpener {
        SessionBackendOpener(
            schemes: ["postgresql://", "postgres://"],
            forms: ["postgresql://[user[:password]@]host[:port]/db[?table=]", "postgresql:///db?host=/var/run/postgresql"],
            configuration: { try PostgreSQLSessionBackend.Configuration(url: $0) },
            start: { configuration, logger in try PostgreSQLSessionBackend(configuration, logger: logger) })
    }
}
