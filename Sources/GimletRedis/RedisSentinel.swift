import Foundation
import Gimlet
import GimletBackendSupport
import GimletHTTP
import Logging
import Synchronization

/// Where to ask for the master of a Redis set that Redis Sentinel watches.
public struct RedisSentinelSettings: Sendable, Equatable {
    /// The sentinels, `host:port` each (26379 by default); asked in turn.
    public var sentinels: [(host: String, port: Int)]
    /// The name the sentinels monitor the master under (`sentinel monitor NAME …`).
    public var masterName: String
    /// The sentinels' own password (their `requirepass`), if they have one.
    public var password: String?

    /// Settings for the master `masterName`, known to `sentinels`.
    public init(sentinels: [(host: String, port: Int)], masterName: String, password: String? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
    }

    public static func == (left: Self, right: Self) -> Bool {
        left.masterName == right.masterName && left.password == right.password
            && left.sentinels.map(\.host) == right.sentinels.map(\.host)
            && left.sentinels.map(\.port) == right.sentinels.map(\.port)
    }
}

/// Where the master is: asked of the sentinels (the one that answered last
/// first, so a dead sentinel costs one connect timeout once, not per ask),
/// then kept until a connection to it fails or a failover is announced.
///
/// The announcement matters when the old master stays up (`SENTINEL
/// FAILOVER`, a network split): it keeps accepting writes until the
/// sentinels demote it, seconds later, and those writes are then lost.
/// ``watch(whileAlive:retiring:)`` subscribes to every sentinel's `+promoted-slave`
/// (sent by the sentinel leading the failover as soon as the replica is
/// master) and `+switch-master` (sent by each sentinel once it knows), and
/// moves every new connection to the new master at the first of them.
final class RedisSentinel: Sendable {
    let settings: RedisSentinelSettings
    private let timeoutMilliseconds: Int
    /// The index of the sentinel that answered last.
    private let preferred = Atomic<Int>(0)
    /// The master as last learned (`known`, until a connection to it fails),
    /// and the one connections were last made to (`current`, never cleared).
    private let endpoints = Mutex<(known: RedisEndpoint?, current: RedisEndpoint?)>((nil, nil))
    /// What drops the connections made so far, once ``watch(whileAlive:retiring:)`` is called.
    private let retire = Mutex<(@Sendable () -> Void)?>(nil)
    /// A thread per sentinel listening for failovers, from ``watch(whileAlive:retiring:)`` to ``stop()``.
    private let watchers: [PeriodicWork]
    /// Where a change of master is said (the backend's logger).
    private let logger: Logger

    init(_ settings: RedisSentinelSettings, timeoutMilliseconds: Int, logger: Logger) {
        self.settings = settings
        self.timeoutMilliseconds = timeoutMilliseconds
        self.logger = logger
        // 15 characters at most: a longer name is not given to the thread.
        watchers = settings.sentinels.map { _ in PeriodicWork(name: "gimlet-sentinel", interval: .milliseconds(1)) }
    }

    /// The master: the one last learned, or the one the first sentinel that knows it names.
    ///
    /// - Throws: ``RedisError`` naming each sentinel's failure when none
    ///   answered with an address.
    func master() throws(RedisError) -> RedisEndpoint {
        if let endpoint = endpoints.withLock({ $0.known }) { return endpoint }
        let endpoint = try ask()
        learn(endpoint)
        return endpoint
    }

    /// Forgets the master (a connection to it failed, or it is not one):
    /// the next ``master()`` asks the sentinels again.
    func forget() {
        endpoints.withLock { $0.known = nil }
    }

    /// Starts listening for failovers: when a new master is named, `retire`
    /// runs, so that connections to the old one are not reused, and new
    /// connections go to the new master. The threads end at ``stop()``, or
    /// once `owner` is gone.
    ///
    /// The threads watch `owner`, not this object: each holds this object
    /// while it listens, so with several of them it would never be let go.
    func watch(whileAlive owner: AnyObject & Sendable, retiring retire: @escaping @Sendable () -> Void) {
        self.retire.withLock { $0 = retire }
        for (index, watcher) in watchers.enumerated() {
            let listener = Listener(sentinel: index)
            watcher.start { [weak owner] in
                guard owner != nil else { return false }
                listener.listen(to: self, forMilliseconds: 250)
                return true
            }
        }
    }

    /// Stops listening (each thread within a quarter of a second).
    func stop() {
        for watcher in watchers { watcher.stop() }
    }

    /// The master is at `address`: when that is not where connections were
    /// made so far, they are retired.
    fileprivate func learn(_ address: RedisEndpoint) {
        let previous = endpoints.withLock { endpoints in
            defer { endpoints = (address, address) }
            return endpoints.current.flatMap { $0 != address ? $0 : nil }
        }
        guard let previous else { return }
        logger.notice("Redis Sentinel names a new master; connections to the old one are dropped",
                      metadata: ["master": "\(address.description)", "previous": "\(previous.description)",
                                 "sentinel_master_name": "\(settings.masterName)"])
        if let retire = retire.withLock({ $0 }) { retire() }
    }

    /// Asks each sentinel in turn, the last one to answer first.
    fileprivate func ask() throws(RedisError) -> RedisEndpoint {
        var failures: [String] = []
        for (index, sentinel) in order() {
            do throws(RedisError) {
                let connection = try connect(to: sentinel)
                var pipeline = RedisPipeline()
                pipeline.command("SENTINEL", Array("get-master-addr-by-name".utf8), Array(settings.masterName.utf8))
                let replies = try connection.pipeline(pipeline)
                if let message = RedisReply.firstError(in: replies) {
                    throw RedisError(message: message, connectionLost: true, code: RedisReply.errorCode(message))
                }
                guard case .array(let address)? = replies.last, address.count == 2,
                      case .string(let host) = address[0], case .string(let portText) = address[1],
                      let host = UTF8Text.string(host), let portString = UTF8Text.string(portText), let port = Int(portString)
                else {
                    throw RedisError(message: "does not know the master", connectionLost: true, code: "NOMASTER")
                }
                preferred.store(index, ordering: .relaxed)
                return .tcp(host: host, port: port)
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError(message: "no sentinel knows master \(String(reflecting: settings.masterName)): \(failures.joined(separator: "; "))",
                         connectionLost: true, code: "NOMASTER")
    }

    /// The sentinels with their indexes, the one that answered last first.
    fileprivate func order() -> [(Int, RedisEndpoint)] {
        let count = settings.sentinels.count
        let first = preferred.load(ordering: .relaxed)
        return (0..<count).map { offset in
            let index = (first + offset) % count
            return (index, .tcp(host: settings.sentinels[index].host, port: settings.sentinels[index].port))
        }
    }

    /// A connection to `sentinel`, authenticated if the sentinels have a password.
    fileprivate func connect(to sentinel: RedisEndpoint) throws(RedisError) -> RedisConnection {
        let connection = try RedisConnection(sentinel, timeoutMilliseconds: timeoutMilliseconds)
        if let password = settings.password {
            var pipeline = RedisPipeline()
            pipeline.command("AUTH", Array(password.utf8))
            if let message = RedisReply.firstError(in: try connection.pipeline(pipeline)) {
                throw RedisError(message: message, connectionLost: true, code: RedisReply.errorCode(message))
            }
        }
        return connection
    }
}

/// A watch thread's state: a subscription to one sentinel's announcements.
/// `@unchecked Sendable`: only that thread uses it.
private final class Listener: @unchecked Sendable {
    /// The sentinel's index in the settings.
    let sentinel: Int
    var subscription: RedisConnection?
    /// When the subscription was last tried or last heard from.
    var lastContact = ContinuousClock.now - .seconds(60)
    var pingSent = false

    init(sentinel: Int) {
        self.sentinel = sentinel
    }

    /// Waits up to `milliseconds` for an announcement and acts on it;
    /// (re)subscribes first if needed, at most once a second.
    func listen(to sentinel: RedisSentinel, forMilliseconds milliseconds: Int) {
        guard let subscription = subscription ?? subscribe(to: sentinel) else {
            Thread.sleep(forTimeInterval: Double(milliseconds) / 1000)
            return
        }
        do {
            guard let reply = try subscription.pushedReply(waitingUpTo: milliseconds) else {
                try keepAlive(subscription)
                return
            }
            lastContact = .now
            pingSent = false
            if let master = Self.newMaster(in: reply, named: sentinel.settings.masterName) { sentinel.learn(master) }
        } catch {
            self.subscription = nil
        }
    }

    /// The new master a message announces, if it is about `name`:
    /// - `+switch-master`: `NAME OLD-IP OLD-PORT NEW-IP NEW-PORT`;
    /// - `+promoted-slave`: `slave IP:PORT IP PORT @ NAME MASTER-IP MASTER-PORT`.
    static func newMaster(in reply: RedisReply, named name: String) -> RedisEndpoint? {
        guard case .array(let parts) = reply, parts.count == 3, parts[0] == .string(Array("message".utf8)),
              case .string(let channel) = parts[1], case .string(let payload) = parts[2],
              let words = UTF8Text.string(payload)?.split(separator: " ")
        else { return nil }
        switch UTF8Text.string(channel) {
        case "+switch-master" where words.count == 5 && words[0] == name:
            return Int(words[4]).map { .tcp(host: String(words[3]), port: $0) }
        case "+promoted-slave" where words.count == 8 && words[0] == "slave" && words[5] == name:
            return Int(words[3]).map { .tcp(host: String(words[2]), port: $0) }
        default:
            return nil
        }
    }

    /// A sentinel silent for 5 s is pinged; silent 5 s more, it is dropped and subscribed to again.
    private func keepAlive(_ subscription: RedisConnection) throws(RedisError) {
        let silence = ContinuousClock.now - lastContact
        if silence > .seconds(10) { throw RedisError(message: "the sentinel stopped answering", connectionLost: true) }
        if silence > .seconds(5), !pingSent {
            var ping = RedisPipeline()
            ping.command("PING")
            try subscription.send(ping)
            pingSent = true
        }
    }

    /// Subscribes, then asks the sentinel for the master, in case a
    /// failover was missed while not subscribed.
    private func subscribe(to sentinel: RedisSentinel) -> RedisConnection? {
        guard ContinuousClock.now - lastContact > .seconds(1) else { return nil }
        lastContact = .now
        let (host, port) = sentinel.settings.sentinels[self.sentinel]
        guard let connection = try? sentinel.connect(to: .tcp(host: host, port: port)) else { return nil }
        var pipeline = RedisPipeline()
        // SUBSCRIBE answers once per channel: the second answer is read
        // (and passed over) as the first pushed reply.
        pipeline.command("SUBSCRIBE", Array("+switch-master".utf8), Array("+promoted-slave".utf8))
        guard let replies = try? connection.pipeline(pipeline), RedisReply.firstError(in: replies) == nil else { return nil }
        subscription = connection
        pingSent = false
        if let master = try? sentinel.ask() { sentinel.learn(master) }
        return connection
    }
}

extension RedisEndpoint: CustomStringConvertible {
    /// `host:port`, or `unix:PATH`, for log lines.
    var description: String {
        switch self {
        case .tcp(let host, let port): "\(host):\(port)"
        case .unix(let path): "unix:" + path
        }
    }
}
