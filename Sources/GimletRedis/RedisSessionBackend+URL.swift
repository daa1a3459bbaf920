import Gimlet
import GimletHTTP

extension RedisSessionBackend.Configuration {
    /// Reads a backend URL:
    /// `redis://[[user]:password@]host[:port][/db][?prefix=gimlet:&timeout_ms=1000]` or
    /// `redis+unix:///path/redis.sock[?db=0&password=…&prefix=…&timeout_ms=…]`.
    ///
    /// - Throws: `SessionConfigurationError` saying which part is wrong.
    public init(url: String) throws {
        func fail(_ what: String) -> SessionConfigurationError {
            SessionConfigurationError("redis URL \(String(reflecting: url)): \(what)")
        }
        var rest: Substring
        let isUnix: Bool
        if url.hasPrefix("redis+unix://") {
            rest = url.dropFirst("redis+unix://".count)
            isUnix = true
        } else if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
            isUnix = false
        } else {
            throw fail("not a redis:// or redis+unix:// URL")
        }
        var query: [(name: String, value: String)] = []
        if let question = rest.firstIndex(of: "?") {
            query = try BackendURLQuery.options(rest[rest.index(after: question)...], url: url)
            rest = rest[..<question]
        }
        var username: String?, password: String?
        var database = 0
        if isUnix {
            guard rest.hasPrefix("/"), rest.count > 1 else { throw fail("needs an absolute socket path, redis+unix:///path/redis.sock") }
            self.init(endpoint: .unix(path: String(rest)))
        } else {
            if let at = rest.lastIndex(of: "@") {
                let userInfo = rest[..<at]
                rest = rest[rest.index(after: at)...]
                if let colon = userInfo.firstIndex(of: ":") {
                    let user = String(userInfo[..<colon])
                    username = user.isEmpty ? nil : decodedUserInfo(user)
                    password = decodedUserInfo(String(userInfo[userInfo.index(after: colon)...]))
                } else {
                    password = decodedUserInfo(String(userInfo))
                }
            }
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let number = Int(db), number >= 0 else { throw fail("database must be a number, as in /0") }
                    database = number
                }
            }
            var host = String(hostPort), port = 6379
            if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                guard let number = Int(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(number) else {
                    throw fail("port must be a number from 1 to 65535")
                }
                port = number
            }
            guard !host.isEmpty else { throw fail("no host") }
            self.init(endpoint: .tcp(host: host, port: port))
        }
        self.username = username
        self.password = password
        self.database = database
        for (name, value) in query {
            switch name {
            case "prefix": prefix = value
            case "timeout_ms":
                guard let number = Int(value), number > 0 else { throw fail("timeout_ms must be a positive number") }
                timeoutMilliseconds = number
            case "db":
                guard let number = Int(value), number >= 0 else { throw fail("db must be a number") }
                self.database = number
            case "password": self.password = value
            case "max_connections":
                guard let number = Int(value), number > 0 else { throw fail("max_connections must be a positive number") }
                maxConnections = number
            default: throw fail("unknown option \(String(reflecting: name)); known: prefix, timeout_ms, db, password, max_connections")
            }
        }
    }
}

/// Percent-decoded user info; malformed escapes are kept as written.
private func decodedUserInfo<S: StringProtocol>(_ text: S) -> String {
    PercentDecoding.decode(text, plusAsSpace: false) ?? String(text)
}

extension SessionBackendOpener {
    /// `redis://[[user]:password@]host[:port][/db][?prefix=&timeout_ms=]` and
    /// `redis+unix:///path/redis.sock[?db=&password=&prefix=&timeout_ms=]`:
    /// ``RedisSessionBackend``.
    public static var redis: SessionBackendOpener {
        SessionBackendOpener(
            schemes: ["redis://", "redis+unix://"],
            forms: ["redis://[:password@]host[:port][/db]", "redis+unix:///path/redis.sock"],
            configuration: { try RedisSessionBackend.Configuration(url: $0) },
            start: { configuration, _ in try RedisSessionBackend(configuration) })
    }
}
