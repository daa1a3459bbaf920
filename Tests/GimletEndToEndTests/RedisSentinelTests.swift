import Foundation
import Gimlet
@testable import GimletRedis
import GimletTesting
import Logging
import Synchronization
import Testing

/// RedisSessionBackend behind Redis Sentinel: real processes, a master, two
/// replicas and three sentinels on loopback.
@Suite(.serialized) struct RedisSentinel {
    /// Every conformance check, through the sentinels, each with `WAIT 1`.
    @Test func conformance() throws {
        let cluster = try RedisSentinelCluster()
        for (index, check) in BackendConformance.checks.enumerated() {
            let backend = try RedisSessionBackend(.init(url: cluster.url("?wait=1&prefix=c\(index):")), logger: testLogger)
            do {
                // Redis keeps its own time: let TTLs pass for real.
                try BackendConformance.run(check.name, on: .init(backend: backend) { usleep(UInt32($0) * 1_000_000 + 100_000) })
            } catch {
                Issue.record("\(check.name): \(error)")
            }
        }
    }

    /// The sentinels' announcements (`+promoted-slave`, `+switch-master`)
    /// reach the watch within a second of the sentinels naming the new
    /// master, retire the connections once (not once per sentinel), and the
    /// master they give is the one asked for next.
    @Test func aSwitchIsHeardAsItIsAnnounced() throws {
        let cluster = try RedisSentinelCluster()
        let configuration = try RedisSessionBackend.Configuration(url: cluster.url())
        let lines = LogLines()
        let logger = Logger(label: "test") { _ in lines }
        let sentinel = GimletRedis.RedisSentinel(try #require(configuration.sentinel), timeoutMilliseconds: 500, logger: logger)
        defer { sentinel.stop() }
        let old = try cluster.masterPort()
        #expect(try sentinel.master() == .tcp(host: "127.0.0.1", port: old))
        let heard = Atomic<Int>(0)
        sentinel.watch(whileAlive: cluster) { heard.add(1, ordering: .relaxed) }
        // And a backend's idle connection is dropped.
        let backend = try RedisSessionBackend(configuration, logger: logger)
        defer { backend.shutdown() }
        // The watch subscribes on a thread of its own and says nothing when
        // it has: give it time to, or the switch below happens unheard.
        usleep(500_000)
        #expect(try cluster.cli(cluster.sentinelPorts[0], "SENTINEL", "FAILOVER", cluster.masterName).hasPrefix("OK"))
        let new = try cluster.waitForNewMaster(replacing: old)
        #expect(waitUntil(seconds: 1) { heard.load(ordering: .relaxed) > 0 }, "the switch was announced")
        usleep(2_000_000)  // the point: a second announcement would come within this
        #expect(heard.load(ordering: .relaxed) == 1)
        #expect(try sentinel.master() == .tcp(host: "127.0.0.1", port: new))
        #expect(waitUntil(seconds: 1) { backend.poolStatistics.discarded == 1 }, "\(backend.poolStatistics)")
        // The change of master is said in the app's log, old and new named.
        let said = lines.all.filter { $0.contains("names a new master") }
        #expect(!said.isEmpty && said.allSatisfy { $0.contains("master=127.0.0.1:\(new)") && $0.contains("previous=127.0.0.1:\(old)") },
                "\(lines.all)")
    }

    /// A backend let go without `shutdown()` leaves no watch thread behind.
    /// Failed before: first a cycle (the sentinel held the pool, whose
    /// connector holds the sentinel), then the three threads, each holding
    /// the sentinel while it listened, kept it alive between them.
    @Test func aBackendLetGoEndsItsWatchThreads() throws {
        let cluster = try RedisSentinelCluster()
        // By thread id: other backends' watch threads may be ending meanwhile.
        func watchThreads() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return Set(tasks.filter { task in
                (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.hasPrefix("gimlet-sentinel") == true
            })
        }
        let before = watchThreads()
        var ours: Set<String> = []
        weak var gone: RedisSessionBackend?
        do {
            let backend = try RedisSessionBackend(.init(url: cluster.url()), logger: testLogger)
            gone = backend
            try backend.commit([SessionChange(id: SessionID.random(), upserts: ["a": 1], timeToLive: 60)])
            // At least ours: another suite's in-process Sentinel backend
            // (BackendsBehindNginx reads sessions back through one) may start
            // its three meanwhile. CI's fresh clone, every suite running at
            // once, did not see ours named within 2 s once.
            #expect(waitUntil(seconds: 10) {
                ours = watchThreads().subtracting(before)
                return ours.count >= 3
            }, "a thread per sentinel")
        }
        #expect(gone == nil, "the backend is released")
        // What a thread left waits in (its kernel wait channel), if one is.
        let waits = { watchThreads().intersection(ours).map { (try? String(contentsOfFile: "/proc/self/task/\($0)/wchan", encoding: .utf8)) ?? "?" } }
        // Another backend's threads among them end with its shutdown, within seconds.
        #expect(waitUntil(seconds: 30) { watchThreads().isDisjoint(with: ours) },
                "\(watchThreads().intersection(ours).count) watch threads left, waiting in \(waits())")
    }

    /// Three ways the master changes, with a caller committing every 5 ms
    /// through it (`wait=1`):
    /// - `kill`: `kill -9` of the master; the sentinels notice within a
    ///   second and promote a replica;
    /// - `failover`: `SENTINEL FAILOVER`; the old master stays up and takes
    ///   writes until the `+switch-master` announcement reaches the backend;
    /// - `switchover`: the same after `CLIENT PAUSE WRITE` on the old master,
    ///   the planned switch the Sentinel recipe describes.
    ///
    /// The backend follows by itself. Once the new master answers, no call
    /// fails but with `NOREPLICAS` (no replica has synced with it yet).
    /// Every commit acknowledged before or during the change is readable
    /// after it, except, with `failover`, those the old master took between
    /// the promotion and the announcement (counted and printed, as is the
    /// window of failed calls).
    @Test(arguments: [RedisSentinelCluster.MasterChange.kill, .failover, .switchover])
    func aFailoverIsFollowedWithoutARestart(how: RedisSentinelCluster.MasterChange) throws {
        let cluster = try RedisSentinelCluster()
        let backend = try RedisSessionBackend(.init(url: cluster.url("?wait=1&timeout_ms=500")), logger: testLogger)
        defer { backend.shutdown() }
        let old = try cluster.masterPort()
        let clock = ContinuousClock()
        var acknowledged: [(id: SessionID, at: Duration)] = []
        for index in 0..<200 {
            let id = SessionID.random()
            try backend.commit([SessionChange(id: id, upserts: ["n": .int(index)], timeToLive: 600)])
            acknowledged.append((id, .zero))
        }
        let start = clock.now
        try cluster.change(how, master: old)
        var failures: [(at: Duration, code: String)] = []
        var answeredAt: Duration?
        var named: Duration?
        while clock.now - start < .seconds(30) {
            let id = SessionID.random()
            do {
                try backend.commit([SessionChange(id: id, upserts: ["after": "failover"], timeToLive: 600)])
                acknowledged.append((id, clock.now - start))
                if named != nil, answeredAt == nil { answeredAt = clock.now - start }
            } catch {
                failures.append((clock.now - start, (error as? SessionBackendError)?.code ?? "\(type(of: error))"))
            }
            if named == nil, let port = try? cluster.masterPort(), port != old { named = clock.now - start }
            if let answeredAt, clock.now - start > answeredAt + .seconds(3) { break }
            usleep(5_000)
        }
        let codes = Dictionary(grouping: failures, by: \.code).mapValues(\.count)
        print("sentinel \(how): new master named at \(named.map { "\($0)" } ?? "never"); \(failures.count) failed calls \(codes), from \(failures.first.map { "\($0.at)" } ?? "-") to \(failures.last.map { "\($0.at)" } ?? "-"); first commit on the new master at \(answeredAt.map { "\($0)" } ?? "never")")
        #expect(named != nil, "the sentinels promoted a replica")
        let answered = try #require(answeredAt, "calls succeed again after the \(how)")
        let late = failures.filter { $0.at > answered && $0.code != "NOREPLICAS" }
        #expect(late.isEmpty, "calls failed once the new master answered: \(late)")

        // The old master, if up, is demoted (and resynced) seconds later: what it took is lost only then.
        if how != .kill {
            #expect(waitUntil(seconds: 30) { (try? cluster.cli(old, "ROLE"))?.hasPrefix("slave") == true })
            #expect(waitUntil(seconds: 30) { (try? cluster.cli(old, "INFO", "replication"))?.contains("master_link_status:up") == true },
                    "the demoted master has resynced")
        }
        let loaded = try backend.load(acknowledged.map(\.id))
        let lost = acknowledged.filter { loaded[$0.id] == nil }.map(\.at)
        print("sentinel \(how): \(lost.count) of \(acknowledged.count) acknowledged commits lost, acknowledged from \(lost.first.map { "\($0)" } ?? "-") to \(lost.last.map { "\($0)" } ?? "-")")
        if how == .failover {
            #expect(lost.allSatisfy { $0 <= (named ?? .zero) + .seconds(1) }, "only commits the old master took before the announcement are lost")
        } else {
            #expect(lost.isEmpty, "\(lost.count) acknowledged commits lost in the \(how)")
        }
    }

    @Test(arguments: [
        ("redis+sentinel://10.0.0.1,10.0.0.2:26380/mymaster/2?wait=1&sentinel_password=s",
         [("10.0.0.1", 26379), ("10.0.0.2", 26380)], "mymaster", 2, 1),
        ("redis+sentinel://:pw@sentinel.internal/gimlet", [("sentinel.internal", 26379)], "gimlet", 0, 0),
    ])
    func urls(url: String, sentinels: [(String, Int)], master: String, database: Int, wait: Int) throws {
        let configuration = try RedisSessionBackend.Configuration(url: url)
        let sentinel = try #require(configuration.sentinel)
        #expect(sentinel.sentinels.map(\.host) == sentinels.map(\.0))
        #expect(sentinel.sentinels.map(\.port) == sentinels.map(\.1))
        #expect(sentinel.masterName == master)
        #expect(configuration.database == database)
        #expect(configuration.waitReplicas == wait)
    }

    /// The wait follows the command timeout unless given, in code as in a
    /// URL, and is never 0 (which Redis's `WAIT` takes as forever).
    @Test func theWaitIsHalfTheTimeoutUnlessGiven() throws {
        var configuration = RedisSessionBackend.Configuration.tcp()
        configuration.waitReplicas = 1
        configuration.timeoutMilliseconds = 200
        #expect(configuration.effectiveWaitTimeoutMilliseconds == 100)
        configuration.timeoutMilliseconds = 1
        #expect(configuration.effectiveWaitTimeoutMilliseconds == 1)
        #expect(try RedisSessionBackend.Configuration(url: "redis://a/0?wait=1&timeout_ms=300").effectiveWaitTimeoutMilliseconds == 150)
        #expect(try RedisSessionBackend.Configuration(url: "redis://a/0?wait=1&wait_timeout_ms=40").effectiveWaitTimeoutMilliseconds == 40)
        #expect(throws: Never.self) { try RedisSessionBackend.Configuration(url: "redis://a/0?timeout_ms=1") }
    }

    @Test(arguments: [
        ("redis+sentinel://10.0.0.1:26379", "needs the master's name"),
        ("redis+sentinel://10.0.0.1:x/m", "port must be a number"),
        ("redis://a,b/0", "one host only"),
        ("redis://a/0?wait=1&timeout_ms=100&wait_timeout_ms=200", "wait_timeout_ms must be less than timeout_ms"),
        ("redis://a/0?sentinel_password=x", "unknown option"),
    ])
    func badURLsSayWhatIsWrong(url: String, message: String) {
        let error = #expect(throws: SessionConfigurationError.self) { try RedisSessionBackend.Configuration(url: url) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}
