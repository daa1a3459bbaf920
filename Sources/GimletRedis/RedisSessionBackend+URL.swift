import Gimlet
import GimletBackendSupport
import GimletHTTP

extension RedisSessionBackend.Configuration {
    /// Reads a backend URL:
    /// `redis://[[user]:password@]host[:port][/db][?prefix=gimlet:&timeout_ms=1000]`,
    /// `redis+unix:///path/redis.sock[?db=0&password=…&prefix=…&timeout_ms=…]` or
    /// `redis+sentinel://[[user]:password@]host1[:26379],host2[:26379],…/MASTER_NAME[/db][?…&sentinel_password=…]`,
    /// each with `&wait=REPLICAS&wait_timeout_ms=…` to acknowledge a commit
    /// only once that many replicas have it, and `&max_connections=`.
    ///
    /// - Throws: `SessionConfigurationError` saying which part is wrong.
    public init(url: String) throws {
        func fail(_ what: String) -> SessionConfigurationError {
            SessionConfigurationError("redis URL \(String(reflecting: BackendURLRedaction.redacted(url))): \(what)")
        }
        var rest: Substring
        let isUnix: Bool, isSentinel: Bool
        if url.hasPrefix("redis+unix://") {
            rest = url.dropFirst("redis+unix://".count)
            (isUnix, isSentinel) = (true, false)
        } else if url.hasPrefix("redis+sentinel://") {
            rest = url.dropFirst("redis+sentinel://".count)
            (isUnix, isSentinel) = (false, true)
        } else if url.hasPrefix("redis://") {
            rest = url.dropFirst("redis://".count)
            (isUnix, isSentinel) = (false, false)
        } else {
            throw fail("not a redis://, redis+unix:// or redis+sentinel:// URL")
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
            var hostPort = rest, path: Substring = ""
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            var masterName: String?
            if isSentinel {
                let name = path.prefix { $0 != "/" }
                guard !name.isEmpty else { throw fail("needs the master's name, as in redis+sentinel://host:26379/mymaster") }
                masterName = decodedUserInfo(String(name))
                path = path.dropFirst(name.count + 1)
            }
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { throw fail("database must be a number, as in /0") }
                database = number
            }
            var addresses: [(host: String, port: Int)] = []
            for address in hostPort.split(separator: ",", omittingEmptySubsequences: false) {
                var host = String(address), port = isSentinel ? 26379 : 6379
                if let colon = address.lastIndex(of: ":") {
                    host = String(address[..<colon])
                    guard let number = Int(address[address.index(after: colon)...]), (1...65_535).contains(number) else {
                        throw fail("port must be a number from 1 to 65535")
                    }
                    port = number
                }
                guard !host.isEmpty else { throw fail("no host") }
                addresses.append((host, port))
            }
            if let masterName {
                self = .sentinel(addresses, masterName: masterName)
            } else {
                guard addresses.count == 1 else { throw fail("one host only (several are for redis+sentinel://)") }
                self.init(endpoint: .tcp(host: addresses[0].host, port: addresses[0].port))
            }
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
            case "wait":
                guard let number = Int(value), number >= 0 else { throw fail("wait must be a number of replicas") }
                waitReplicas = number
            case "wait_timeout_ms":
                guard let number = Int(value), number > 0 else { throw fail("wait_timeout_ms must be a positive number") }
                waitTimeoutMilliseconds = number
            case "sentinel_password" where isSentinel:
                sentinel?.password = value
            default:
                throw fail("unknown option \(String(reflecting: name)); known: prefix, timeout_ms, db, password, max_connections, wait, wait_timeout_ms\(isSentinel ? ", sentinel_password" : "")")
            }
        }
        guard waitReplicas == 0 && waitTimeoutMilliseconds == nil || effectiveWaitTimeoutMilliseconds < timeoutMilliseconds else {
            throw fail("wait_timeout_ms must be less than timeout_ms (\(timeoutMilliseconds)), or the wait outlasts the command")
        }
    }
}

/// Percent-decoded user info; malformed escapes are kept as written.
private func decodedUserInfo<S: StringProtocol>(_ text: S) -> String {
    PercentDecoding.decode(text, plusAsSpace: false) ?? String(text)
}

extension SessionBackendOpener {
    /// `redis://[[user]:password@]host[:port][/db][?prefix=&timeout_ms=]`,
    /// `redis+unix:///path/redis.sock[?db=&password=&prefix=&timeout_ms=]` and
    /// `redis+sentinel://host1:26379,host2:26379/MASTER_NAME[/db]`:
    /// ``RedisSessionBackend``.
    public static var redis: SessionBackendOpener {
        SessionBackendOpener(
            schemes: ["redis://", "redis+unix://", "redis+sentinel://"],
            forms: ["redis://[:password@]host[:port][/db]", "redis+unix:///path/redis.sock",
                    "redis+sentinel://host:26379,host:26379/MASTER[/db]"],
            configuration: { try RedisSessionBackend.Configuration(url: $0) },
            start: { configuration, logger in try RedisSessionBackend(configuration, logger: logger) })
    }
}
