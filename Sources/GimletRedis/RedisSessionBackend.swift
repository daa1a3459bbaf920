import Gimlet
import GimletBackendSupport
import GimletHTTP
import Logging

/// Server-side sessions in Redis: for several hosts behind one nginx `upstream`.
///
/// One hash per channel at `prefix + id` (hex), one field per session key
/// holding the value's JSON, so operators can look with
/// `redis-cli HGETALL gimlet:<id>`. Loading both channels is one pipelined
/// round trip (`HGETALL` each); committing is one pipelined round trip
/// (`MULTI`, `HSET` of changed fields, `HDEL` of removed ones, `EXPIRE`,
/// `EXEC`), or, when the request wrote keys it had read, one `EVAL` that
/// checks those keys and writes atomically (`RedisCheckedCommit`). Redis
/// expires idle hashes by itself.
///
/// Connections are pooled; one that fails is dropped and the next request
/// connects anew, so the backend recovers by itself when Redis is back, and a
/// connection that died while idle costs no request (see `exchange(_:)`).
///
/// ```swift
/// let backend = try RedisSessionBackend(.init(url: "redis://127.0.0.1:6379/0"), logger: logger)
/// ```
public final class RedisSessionBackend: SessionBackend {
    /// Where Redis is and how to talk to it.
    public struct Configuration: Sendable {
        var endpoint: RedisEndpoint
        /// `AUTH` user (Redis 6 ACL), if any.
        public var username: String?
        /// `AUTH` password, if any.
        public var password: String?
        /// The database index (`SELECT`).
        public var database: Int
        /// The key prefix of the hashes.
        public var prefix: String
        /// Connect and command timeout; past it the request gets 503.
        public var timeoutMilliseconds: Int
        /// The most connections this process opens at once; a request finding
        /// all of them busy waits for one up to `timeoutMilliseconds`, then gets 503.
        public var maxConnections: Int
        /// Where to ask for the master, when Redis Sentinel watches it
        /// (`redis+sentinel://`); the endpoint is then unused.
        public var sentinel: RedisSentinelSettings?
        /// Replicas that must have a commit (Redis's `WAIT`) before it is
        /// acknowledged; 0 waits for none. A commit that does not reach them
        /// within `waitTimeoutMilliseconds` gets 503 (it may still be on the master).
        public var waitReplicas: Int
        /// How long a commit waits for `waitReplicas`, less than
        /// `timeoutMilliseconds`; `nil` (the default) for half of it.
        public var waitTimeoutMilliseconds: Int?

        /// The wait in effect: ``waitTimeoutMilliseconds``, or half of
        /// ``timeoutMilliseconds``; never 0, which Redis takes as forever.
        var effectiveWaitTimeoutMilliseconds: Int { max(1, waitTimeoutMilliseconds ?? timeoutMilliseconds / 2) }

        /// Redis behind Redis Sentinel: new connections go to the master
        /// the sentinels name `masterName` (asked once, and again after a
        /// connection to it fails or a failover is announced), each checked
        /// with `ROLE`.
        public static func sentinel(_ sentinels: [(host: String, port: Int)], masterName: String) -> Configuration {
            var configuration = Configuration(endpoint: .tcp(host: "", port: 0))
            configuration.sentinel = RedisSentinelSettings(sentinels: sentinels, masterName: masterName)
            return configuration
        }

        /// Redis on TCP.
        public static func tcp(host: String = "127.0.0.1", port: Int = 6379) -> Configuration {
            Configuration(endpoint: .tcp(host: host, port: port))
        }

        /// Redis on a unix socket.
        public static func unix(path: String) -> Configuration {
            Configuration(endpoint: .unix(path: path))
        }

        init(endpoint: RedisEndpoint, username: String? = nil, password: String? = nil, database: Int = 0,
             prefix: String = "gimlet:", timeoutMilliseconds: Int = 1000, maxConnections: Int = 64) {
            self.endpoint = endpoint
            self.username = username
            self.password = password
            self.database = database
            self.prefix = prefix
            self.timeoutMilliseconds = timeoutMilliseconds
            self.maxConnections = maxConnections
            sentinel = nil
            waitReplicas = 0
            waitTimeoutMilliseconds = nil
        }
    }

    /// The server and settings it connects with.
    public let configuration: Configuration
    /// The key prefix as bytes, made once.
    private let prefixBytes: [UInt8]
    /// The connections; one taken out is used by that thread alone until given back.
    private let connections: Pool<RedisConnection>
    /// Where the master is, with Redis Sentinel.
    private let sentinel: RedisSentinel?

    /// Creates the backend and checks that Redis answers; with Redis
    /// Sentinel, also starts listening for failovers (until ``shutdown()``).
    ///
    /// - Parameters:
    ///   - configuration: the server and its settings.
    ///   - logger: the app's logger (the host passes its own to the app);
    ///     a change of master that Sentinel announces is said there.
    /// - Throws: ``RedisError`` if Redis cannot be reached or refuses `AUTH`/`SELECT`.
    public init(_ configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        prefixBytes = Array(configuration.prefix.utf8)
        let sentinel = configuration.sentinel.map {
            RedisSentinel($0, timeoutMilliseconds: configuration.timeoutMilliseconds, logger: logger)
        }
        self.sentinel = sentinel
        let connections = Pool(capacity: configuration.maxConnections,
                               waitLimit: .milliseconds(configuration.timeoutMilliseconds),
                               countsAsConnections: true) { [configuration] in try Self.connect(configuration, sentinel: sentinel) }
        self.connections = connections
        // Check now that Redis answers, and keep the connection.
        connections.giveBack(try connections.take())
        // Weakly: the pool's connector holds the sentinel, which holds this.
        sentinel?.watch(whileAlive: connections) { [weak connections] in connections?.retireAll() }
    }

    /// Stops listening for failovers (Redis Sentinel only).
    public func shutdown() {
        sentinel?.stop()
    }

    /// What the connection pool holds and has done.
    package var poolStatistics: PoolStatistics { connections.statistics }

    public var sharesAcrossProcesses: Bool { true }

    public var name: String {
        if let sentinel = configuration.sentinel {
            let sentinels = sentinel.sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")
            return "redis+sentinel://\(sentinels)/\(sentinel.masterName)/\(configuration.database)"
        }
        return switch configuration.endpoint {
        case .tcp(let host, let port): "redis://\(host):\(port)/\(configuration.database)"
        case .unix(let path): "redis+unix://\(path)?db=\(configuration.database)"
        }
    }

    func key(_ id: SessionID) -> [UInt8] {
        var key = prefixBytes
        key.reserveCapacity(key.count + 32)
        id.appendHex(to: &key)
        return key
    }

    public func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] {
        guard !ids.isEmpty else { return [:] }
        var pipeline = RedisPipeline()
        for id in ids { pipeline.command("HGETALL", key(id)) }
        let replies = try exchange(pipeline)
        var found: [SessionID: [String: SessionValue]] = [:]
        for (id, reply) in zip(ids, replies) {
            guard case .array(let elements) = reply else {
                throw SessionBackendError(backend: name, message: "unexpected reply to HGETALL: \(reply)")
            }
            guard !elements.isEmpty else { continue }
            var values: [String: SessionValue] = [:]
            var index = 0
            while index + 1 < elements.count {
                if case .string(let field) = elements[index], case .string(let json) = elements[index + 1],
                   let key = UTF8Text.string(field), let value = try? SessionValue(json: json) {
                    values[key] = value
                }
                index += 2
            }
            found[id] = values
        }
        return found
    }

    public func commit(_ changes: [SessionChange]) throws {
        if changes.contains(where: { !$0.expected.isEmpty }) { return try checkedCommit(changes) }
        var pipeline = RedisPipeline()
        for change in changes {
            let key = key(change.id)
            if change.removeAll { pipeline.command("DEL", key) }
            if !change.removals.isEmpty {
                pipeline.begin("HDEL", arguments: 1 + change.removals.count)
                pipeline.argument(key)
                for field in change.removals.sorted() { pipeline.argument(field) }
            }
            if !change.upserts.isEmpty {
                pipeline.begin("HSET", arguments: 1 + 2 * change.upserts.count)
                pipeline.argument(key)
                for (field, value) in change.upserts.sorted(by: { $0.key < $1.key }) {
                    pipeline.argument(field)
                    pipeline.argument(value.json)
                }
            }
            if !change.upserts.isEmpty || change.isRenewalOnly {
                pipeline.begin("EXPIRE", arguments: 2)
                pipeline.argument(key)
                pipeline.argument(String(change.timeToLive))
            }
        }
        let commands = pipeline.count
        guard commands > 0 else { return }
        // One command needs no transaction; several go in MULTI/EXEC so a
        // request's changes land together or not at all.
        pipeline.wrapInTransaction()
        let transaction = pipeline.count - 1
        appendWait(to: &pipeline)
        let replies = try exchange(pipeline)
        if commands > 1 {
            let outcome = transaction < replies.count ? replies[transaction] : nil
            guard case .array(let results)? = outcome else {
                throw SessionBackendError(backend: name, message: "transaction aborted: \(outcome.map { "\($0)" } ?? "no reply")")
            }
            if let refusal = RedisReply.firstError(in: results) { throw failure(refusal, saying: "command failed") }
        }
        try checkWait(replies)
    }

    /// One `MULTI`/`EXEC` of `HINCRBY`, `EXPIRE … NX` (a new counter's
    /// window; a live one keeps its own) and `TTL` per counter.
    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        guard !counters.isEmpty else { return [] }
        var pipeline = RedisPipeline()
        for id in counters {
            let key = key(id)
            pipeline.command("HINCRBY", key, Array(SessionCounter.key.utf8), Array("1".utf8))
            pipeline.command("EXPIRE", key, Array(String(window).utf8), Array("NX".utf8))
            pipeline.command("TTL", key)
        }
        pipeline.wrapInTransaction()
        let transaction = pipeline.count - 1
        let replies = try exchange(pipeline)
        let outcome = transaction < replies.count ? replies[transaction] : nil
        guard case .array(let results)? = outcome, results.count == 3 * counters.count else {
            throw SessionBackendError(backend: name, message: "transaction aborted: \(outcome.map { "\($0)" } ?? "no reply")")
        }
        if let refusal = RedisReply.firstError(in: results) { throw failure(refusal, saying: "counting failed") }
        return counters.indices.map { index in
            guard case .integer(let count) = results[3 * index], case .integer(let left) = results[3 * index + 2] else {
                return SessionCounter(count: Int.max, secondsLeft: window)  // unreadable: counted as over any limit
            }
            return SessionCounter(count: Int(count), secondsLeft: left > 0 ? Int64(left) : window)
        }
    }

    /// With ``Configuration/waitReplicas``, a `WAIT` after the commit, in the same round trip.
    func appendWait(to pipeline: inout RedisPipeline) {
        guard configuration.waitReplicas > 0 else { return }
        pipeline.command("WAIT", Array(String(configuration.waitReplicas).utf8),
                         Array(String(configuration.effectiveWaitTimeoutMilliseconds).utf8))
    }

    /// Fails the commit if fewer replicas than ``Configuration/waitReplicas`` acknowledged it.
    func checkWait(_ replies: [RedisReply]) throws {
        guard configuration.waitReplicas > 0 else { return }
        guard case .integer(let replicas)? = replies.last, replicas >= configuration.waitReplicas else {
            throw SessionBackendError(
                backend: name, message: "the commit reached \(replies.last.map { "\($0)" } ?? "no") of \(configuration.waitReplicas) replicas within \(configuration.effectiveWaitTimeoutMilliseconds) ms; it may be lost in a failover",
                code: "NOREPLICAS")
        }
    }

    /// A read-modify-write commit: one `EVAL` that checks and writes atomically.
    private func checkedCommit(_ changes: [SessionChange]) throws {
        var marker = prefixBytes
        marker.append(contentsOf: "commit:".utf8)
        SessionID.random().appendHex(to: &marker)
        var pipeline = RedisPipeline()
        RedisCheckedCommit.append(changes, marker: marker, key: key, to: &pipeline)
        appendWait(to: &pipeline)
        let replies = try exchange(pipeline)
        switch replies.first {
        case .integer(1)?:
            try checkWait(replies)
            return
        case .string(let field)?:
            throw SessionConflictError(backend: name, keys: [UTF8Text.string(field) ?? "?"])
        case let other:
            throw SessionBackendError(backend: name, message: "unexpected reply to the checked commit: \(other.map { "\($0)" } ?? "none")")
        }
    }

    /// One pipelined round trip on a pooled connection; a failed connection is dropped.
    ///
    /// A pooled connection may have died while it was idle: Redis restarted,
    /// closed it for idleness, or failed over. If it fails before Redis sent
    /// any reply, the commands never ran on the Redis that serves now, so the
    /// exchange is retried once on a fresh connection, and every idle
    /// connection (opened before the failure, so likely dead too) is dropped.
    /// That retry is safe for every kind of exchange: a load only reads; a
    /// plain commit is one MULTI/EXEC of absolute HSET, HDEL, DEL and EXPIRE,
    /// which leaves the same state if it did run once already; and a checked
    /// commit (`RedisCheckedCommit`) marks itself applied in the same atomic
    /// step, so a replay of one that did run finds its marker and changes
    /// nothing. A fresh connection that fails is not retried: that is an
    /// outage, and the request gets 503.
    func exchange(_ pipeline: RedisPipeline) throws -> [RedisReply] {
        var retriedOnReplica = false
        do {
            return try connections.exchange { connection in
                let replies = try connection.pipeline(pipeline)
                if let refusal = RedisReply.firstError(in: replies) { throw RedisRefusal(message: refusal) }
                return replies
            } fault: { error, reused in
                if let error = error as? RedisError {
                    // One that died unanswered while idle takes every
                    // connection opened before it along, and the exchange is retried.
                    let diedIdle = reused && error.repliesReceived == 0
                    return .broken(andOlder: diedIdle, retry: diedIdle)
                }
                // A replica now (a failover demoted it): nothing was written.
                // Every connection opened before goes, and the exchange is
                // retried once on a fresh one, which finds the master anew.
                guard let refusal = error as? RedisRefusal, RedisReply.errorCode(refusal.message) == "READONLY" else {
                    return .sound  // another error reply: the connection works
                }
                sentinel?.forget()
                defer { retriedOnReplica = true }
                return .broken(andOlder: true, retry: !retriedOnReplica)
            }
        } catch let error as RedisError {
            throw failure(error)  // a lost connection, or a new one that could not be made
        } catch let refusal as RedisRefusal {
            throw failure(refusal.message, saying: "Redis said")
        } catch {
            throw SessionBackendError(backend: name, message: "\(error)")  // the pool is exhausted
        }
    }

    /// The one place a Redis failure becomes the backend's: its message and code kept.
    private func failure(_ error: RedisError) -> SessionBackendError {
        SessionBackendError(backend: name, message: error.message, code: error.code)
    }

    /// An error reply (`WRONGTYPE Operation against a key …`) as the backend's failure.
    private func failure(_ message: String, saying context: String) -> SessionBackendError {
        SessionBackendError(backend: name, message: "\(context): \(message)", code: RedisReply.errorCode(message))
    }

    /// A connection to the master, found through the sentinels if there
    /// are any (and then checked with `ROLE`: a sentinel may not know yet).
    private static func connect(_ configuration: Configuration, sentinel: RedisSentinel?) throws(RedisError) -> RedisConnection {
        do {
            return try connect(configuration, at: try sentinel?.master() ?? configuration.endpoint, checkingRole: sentinel != nil)
        } catch {
            // Gone, or no longer the master: ask the sentinels next time.
            sentinel?.forget()
            throw error
        }
    }

    private static func connect(_ configuration: Configuration, at endpoint: RedisEndpoint,
                                checkingRole: Bool) throws(RedisError) -> RedisConnection {
        let connection = try RedisConnection(endpoint, timeoutMilliseconds: configuration.timeoutMilliseconds)
        var setup = RedisPipeline()
        if let password = configuration.password {
            setup.begin("AUTH", arguments: configuration.username == nil ? 1 : 2)
            if let username = configuration.username { setup.argument(username) }
            setup.argument(password)
        }
        if configuration.database != 0 {
            setup.begin("SELECT", arguments: 1)
            setup.argument(String(configuration.database))
        }
        if checkingRole { setup.command("ROLE") }
        if setup.count > 0 {
            let replies = try connection.pipeline(setup)
            for reply in replies {
                if let message = reply.errorMessage {
                    throw RedisError(message: "Redis refused the connection setup: \(message)", connectionLost: true,
                                     code: RedisReply.errorCode(message))
                }
            }
            if checkingRole {
                guard case .array(let role)? = replies.last, case .string(let kind)? = role.first, kind == Array("master".utf8) else {
                    throw RedisError(message: "\(endpoint), named master by the sentinels, is not a master (yet)", connectionLost: true,
                                     code: "READONLY")
                }
            }
        }
        return connection
    }
}

/// An error reply in an exchange's replies, thrown inside the pool's
/// exchange so that its policy sees it (a replica's `READONLY` retries).
struct RedisRefusal: Error {
    /// The error reply, as Redis wrote it (`READONLY You can't write …`).
    let message: String
}
