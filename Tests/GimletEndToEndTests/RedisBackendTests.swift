import Foundation
import Gimlet
import Logging
import Synchronization
@testable import GimletRedis
import GimletTesting
import SessionLabApp
import Testing

/// RedisSessionBackend against a real redis-server.
@Suite(.serialized) struct RedisBackend {
    @Test(arguments: BackendConformance.checks.map(\.name))
    func conformance(_ name: String) throws {
        let redis = try RedisServer()
        let backend = try RedisSessionBackend(.init(url: redis.url), logger: testLogger)
        // Redis keeps its own time: let TTLs pass for real.
        try BackendConformance.run(name, on: .init(backend: backend) { usleep(UInt32($0) * 1_000_000 + 100_000) })
    }

    /// A checked commit sent again after its connection failed before the
    /// reply (the retry in `exchange`) must not turn into a conflict with
    /// its own writes, nor apply twice.
    @Test func aReplayedCheckedCommitIsAppliedOnce() throws {
        let redis = try RedisServer()
        let backend = try RedisSessionBackend(.init(url: redis.url), logger: testLogger)
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["n": 1], timeToLive: 60)])
        let change = SessionChange(id: id, upserts: ["n": 2], timeToLive: 60, expected: ["n": .value(1)])
        var pipeline = RedisPipeline()
        RedisCheckedCommit.append([change], marker: Array("gimlet:commit:replay".utf8), key: backend.key, to: &pipeline)
        #expect(try backend.exchange(pipeline) == [.integer(1)])
        #expect(try backend.exchange(pipeline) == [.integer(1)], "the replay finds its marker: applied, no conflict")
        #expect(try backend.load([id]) == [id: ["n": 2]])
        #expect(throws: SessionConflictError.self, "a new commit with the same stale read conflicts") {
            try backend.commit([change])
        }
        let ttl = Int(try redis.cli("PTTL", "gimlet:commit:replay").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect((1...60_000).contains(ttl), "the marker expires by itself: \(ttl) ms")
    }

    @Test func unixSocketDatabaseAndPrefix() throws {
        let redis = try RedisServer()
        let backend = try RedisSessionBackend(.init(url: "redis+unix://\(redis.socket)?db=3&prefix=app:"), logger: testLogger)
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["user": "frodo"], timeToLive: 100)])
        #expect(try redis.cli("-n", "3", "HGET", "app:\(id.hex)", "user") == "\"frodo\"\n")
        let ttl = Int(try redis.cli("-n", "3", "TTL", "app:\(id.hex)").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect((90...100).contains(ttl))
        #expect(try backend.load([id]) == [id: ["user": "frodo"]])
    }

    @Test func passwordAndDatabaseFromTheURL() throws {
        let redis = try RedisServer(password: "s3cr3t/pass")
        #expect(throws: (any Error).self, "a wrong password is refused at start-up") {
            try RedisSessionBackend(.init(url: "redis://:wrong@127.0.0.1:\(redis.port)/0"), logger: testLogger)
        }
        let backend = try RedisSessionBackend(.init(url: "redis://:s3cr3t%2Fpass@127.0.0.1:\(redis.port)/5"), logger: testLogger)
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["a": 1], timeToLive: 60)])
        #expect(try redis.cli("-n", "5", "HGET", "gimlet:\(id.hex)", "a") == "1\n")
        #expect(try backend.load([id]) == [id: ["a": 1]])
    }

    /// Exact Redis commands for each request shape of the sessions issue, counted by Redis itself.
    @Test func commandsPerRequestShape() throws {
        let redis = try RedisServer()
        let backend = try RedisSessionBackend(.init(url: redis.url), logger: testLogger)
        let client = TestClient(try SessionLabApp.router(
            SessionConfiguration(secrets: ["commands-secret-0123456789"], backend: backend)))
        client.get("/set/p/1?permanent=1&clientside=0")
        client.get("/set/n/2?permanent=0&clientside=0")
        client.get("/set/c/3?clientside=1")

        func commands(_ path: String) throws -> [String: Int] {
            try redis.resetStats()
            #expect(client.get(path).status < 400, "\(path)")
            return try redis.commandCounts()
        }
        #expect(try commands("/hello") == [:], "untouched: nothing")
        #expect(try commands("/get/c") == [:], "client-side read: nothing")
        #expect(try commands("/get/p") == ["hgetall": 2], "server-side read: both channels, no write")
        #expect(try commands("/len") == ["hgetall": 2])
        // The other channel may hold a copy of p server-side: it is deleted in the same round trip.
        #expect(try commands("/set/p/9?permanent=1&clientside=0")
                    == ["multi": 1, "hset": 1, "hdel": 1, "expire": 1, "exec": 1], "blind write: no read")
        // Read-modify-write: one EVAL that checks the counter, writes it and
        // marks the commit applied (Redis counts the script's own calls too).
        let counter = try commands("/counter")
        #expect(counter == ["hgetall": 2, "eval": 1, "exists": 1, "hget": 1, "hset": 1, "expire": 1, "set": 1],
                "read-modify-write: \(counter)")
        #expect(try commands("/invalidate") == ["multi": 1, "del": 2, "exec": 1], "invalidate deletes both hashes")
    }

    /// A store's failure is wrapped once, into `SessionBackendError` with
    /// Redis's own code and message, which the session carries as it is to
    /// the 503 and its log line (before: its text, inside a string).
    @Test func aStoreErrorKeepsItsCodeUpToThe503() throws {
        let redis = try RedisServer()
        let backend = try RedisSessionBackend(.init(url: redis.url), logger: testLogger)
        let id = SessionID.random()
        _ = try redis.cli("SET", "gimlet:\(id.hex)", "not a hash")
        let direct = #expect(throws: SessionBackendError.self) { try backend.load([id]) }
        #expect(direct?.code == "WRONGTYPE")
        #expect(direct?.message.hasPrefix("Redis said: WRONGTYPE Operation against a key") == true, "\(String(describing: direct))")

        let lines = LogLines()
        let client = TestClient(try SessionLabApp.router(
            SessionConfiguration(secrets: ["codes-secret-0123456789abcdef"], backend: backend)))
        client.logger = Logger(label: "test") { _ in lines }
        #expect(client.get("/set/k/v?clientside=0").status == 200)
        let keys = try redis.cli("--raw", "KEYS", "gimlet:*").split(separator: "\n").map(String.init)
            .filter { $0 != "gimlet:\(id.hex)" }
        #expect(keys.count == 1, "the session's own hash: \(keys)")
        for key in keys { _ = try redis.cli("SET", key, "not a hash") }
        #expect(client.get("/get/k").status == 503)
        let logged = lines.all.joined(separator: "\n")
        #expect(logged.contains("answered 503") && logged.contains("backend_code=WRONGTYPE"), "\(logged)")
        #expect(logged.components(separatedBy: "session backend redis").count == 2, "wrapped once: \(logged)")
    }
}

/// Log lines kept for a test to read: message and metadata, one string each.
final class LogLines: LogHandler, @unchecked Sendable {
    // @unchecked: `lines` is behind its mutex; the rest is what swift-log asks of a handler.
    private let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var all: [String] { lines.withLock { $0 } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.withLock { $0.append("\(event.message) \(fields)") }
    }
}
