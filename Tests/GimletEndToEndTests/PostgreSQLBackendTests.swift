import Foundation
import Gimlet
@testable import GimletPostgreSQL
import GimletTesting
import Logging
import Testing

/// PostgreSQLSessionBackend against a real PostgreSQL server.
@Suite(.serialized) struct PostgreSQLBackend {
    /// Every conformance check, each on its own table of one server (a
    /// server per check would cost an initdb each).
    @Test func conformance() throws {
        let server = try PostgreSQLServer()
        for (index, check) in BackendConformance.checks.enumerated() {
            let clock = ManualClock()
            let backend = try PostgreSQLSessionBackend(
                .init(url: server.url + "?table=conformance_\(index)&sweep_interval=0"), clock: clock)
            do {
                try BackendConformance.run(check.name, on: .init(backend: backend) { clock.advance(by: $0) })
            } catch {
                Issue.record("\(check.name): \(error)")
            }
        }
    }

    @Test func theUnixSocketWorksToo() throws {
        let server = try PostgreSQLServer()
        let backend = try PostgreSQLSessionBackend(.init(url: server.socketURL), clock: SystemClock())
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["k": "v"], timeToLive: 60)])
        #expect(try backend.load([id]) == [id: ["k": "v"]])
        #expect(try server.psql("SELECT convert_from(key, 'UTF8'), value FROM gimlet_sessions") == "k|\"v\"\n",
                "a row per key, the value's JSON")
    }

    /// Loading both channels is one round trip of one statement, committing
    /// a request's changes one round trip of two (the lock, then the
    /// statement that checks and writes), as the server counts statements
    /// and a relay on the wire counts round trips.
    @Test func oneRoundTripToLoadAndOneToCommit() throws {
        let server = try PostgreSQLServer()
        let relay = try RoundTripRelay(to: server.port)
        defer { relay.stop() }
        let url = "postgresql://gimlet@127.0.0.1:\(relay.port)/gimlet?max_connections=1&sweep_interval=0"
        let backend = try PostgreSQLSessionBackend(.init(url: url), clock: SystemClock())
        let (permanent, browser) = (SessionID.random(), SessionID.random())
        try backend.commit([SessionChange(id: permanent, upserts: ["a": 1, "b": 2], timeToLive: 60),
                            SessionChange(id: browser, upserts: ["c": 3], timeToLive: 60)])
        try server.psql("SELECT pg_stat_statements_reset()")
        relay.reset()
        let loaded = try backend.load([permanent, browser])
        #expect(loaded == [permanent: ["a": 1, "b": 2], browser: ["c": 3]])
        #expect(relay.roundTrips == 1, "loading both channels")
        try backend.commit([
            SessionChange(id: permanent, upserts: ["a": 10], removals: ["b"], timeToLive: 60, expected: ["a": .value(1)]),
            SessionChange(id: browser, timeToLive: 60),
        ])
        #expect(relay.roundTrips == 2, "committing both channels' changes")
        let calls = try server.psql("""
            SELECT calls, CASE WHEN query LIKE 'SELECT id, key, value FROM %' THEN 'load'
                WHEN query LIKE '%pg_advisory_xact_lock%' THEN 'lock' WHEN query LIKE 'WITH expected AS%' THEN 'commit'
                ELSE query END AS statement
            FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY statement
            """)
        #expect(calls == "1|commit\n1|load\n1|lock\n", "the load; the commit's lock, and its check-and-write; nothing else")
        #expect(try backend.load([permanent, browser]) == [permanent: ["a": 10], browser: ["c": 3]])
    }

    /// A connection's statements are planned once, when the table may be
    /// empty: the commit's plan then scanned the whole table (a sequential
    /// scan is the cheapest plan for an empty one), so every commit cost
    /// more as sessions were added (seen as `new` slowing down round after
    /// round in `bench/run`). Counted in the blocks the commit reads with a
    /// 50,000-row table: an index lookup reads a handful.
    @Test func aCommitReadsAFewBlocksHoweverLargeTheTable() throws {
        let server = try PostgreSQLServer()
        let backend = try PostgreSQLSessionBackend(.init(url: server.url + "?max_connections=1&sweep_interval=0"),
                                                   clock: SystemClock())
        let id = SessionID.random()
        // Planned on the empty table (one connection, so the later commits reuse the plan).
        try backend.commit([SessionChange(id: id, upserts: ["a": 1], timeToLive: 60)])
        try server.psql("""
            INSERT INTO gimlet_sessions SELECT decode(md5(i::text), 'hex'), 'k'::bytea, '"v"'::json, 4000000000
            FROM generate_series(1, 50000) AS i
            """)
        try server.psql("SELECT pg_stat_statements_reset()")
        try backend.commit([SessionChange(id: id, upserts: ["a": 2], timeToLive: 60, expected: ["a": .value(1)])])
        try backend.commit([SessionChange(id: id, timeToLive: 120)])
        let blocks = try server.psql("""
            SELECT sum(shared_blks_hit + shared_blks_read) FROM pg_stat_statements WHERE query LIKE 'WITH expected AS%'
            """).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(blocks) ?? .max) < 100, "two commits read \(blocks) blocks of a table of about 500")
        #expect(try backend.load([id]) == [id: ["a": 2]])
    }

    /// Group commit: a batch is one transaction and one round trip, and each
    /// request in it keeps its own outcome: a failed compare-and-set (also
    /// against what an earlier request of the batch wrote) is that request's
    /// conflict alone, and a statement refused for one request's data rolls
    /// the batch back and commits the others each alone.
    @Test func aBatchIsOneRoundTripAndEachRequestKeepsItsOutcome() throws {
        let server = try PostgreSQLServer()
        let relay = try RoundTripRelay(to: server.port)
        defer { relay.stop() }
        let url = "postgresql://gimlet@127.0.0.1:\(relay.port)/gimlet?max_connections=1&sweep_interval=0"
        let backend = try PostgreSQLSessionBackend(.init(url: url), clock: SystemClock())
        let (shared, other, third) = (SessionID.random(), SessionID.random(), SessionID.random())
        try backend.commit([SessionChange(id: shared, upserts: ["n": 1], timeToLive: 60)])
        relay.reset()
        let outcomes = backend.commitBatch([
            [SessionChange(id: shared, upserts: ["n": 2], timeToLive: 60, expected: ["n": .value(1)])],
            [SessionChange(id: other, upserts: ["a": "kept"], timeToLive: 60)],
            // Read n = 1 too, but the first request of the batch changed it.
            [SessionChange(id: shared, upserts: ["n": 3], timeToLive: 60, expected: ["n": .value(1)])],
        ])
        #expect(relay.roundTrips == 1, "three requests' commits in one round trip")
        #expect((try? outcomes[0].get()) != nil)
        #expect((try? outcomes[1].get()) != nil)
        let conflict = #expect(throws: SessionConflictError.self) { try outcomes[2].get() }
        #expect(conflict?.keys == ["n"])
        #expect(try backend.load([shared, other]) == [shared: ["n": 2], other: ["a": "kept"]])

        try server.psql("""
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'poisoned' USING ERRCODE = 'check_violation'; END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON gimlet_sessions FOR EACH ROW
                WHEN (NEW.key = 'poison'::bytea) EXECUTE FUNCTION refuse_poison();
            """)
        let refused = backend.commitBatch([
            [SessionChange(id: third, upserts: ["b": 1], timeToLive: 60)],
            [SessionChange(id: other, upserts: ["poison": 1], timeToLive: 60)],
            [SessionChange(id: shared, upserts: ["n": 4], timeToLive: 60, expected: ["n": .value(2)])],
        ])
        #expect((try? refused[0].get()) != nil)
        let error = #expect(throws: SessionBackendError.self) { try refused[1].get() }
        #expect(error?.code == "23514", "\(String(describing: error))")
        #expect((try? refused[2].get()) != nil)
        #expect(try backend.load([shared, other, third]) == [shared: ["n": 4], other: ["a": "kept"], third: ["b": 1]])
    }

    @Test func aChangedKeyIsAConflictAndNothingIsApplied() throws {
        let server = try PostgreSQLServer()
        let backend = try PostgreSQLSessionBackend(.init(url: server.url), clock: SystemClock())
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["n": 1, "m": 1], timeToLive: 60)])
        try backend.commit([SessionChange(id: id, upserts: ["n": 2], timeToLive: 60, expected: ["n": .value(1)])])
        let error = #expect(throws: SessionConflictError.self) {
            try backend.commit([SessionChange(id: id, upserts: ["n": 3, "m": 3], timeToLive: 60, expected: ["n": .value(1)])])
        }
        #expect(error?.keys == ["n"])
        #expect(try backend.load([id]) == [id: ["n": 2, "m": 1]], "nothing of the refused commit")
    }

    @Test func aNewerSchemaIsRefused() throws {
        let server = try PostgreSQLServer()
        _ = try PostgreSQLSessionBackend(.init(url: server.url), clock: SystemClock())
        #expect(try server.psql("SELECT version FROM gimlet_sessions_schema") == "1\n")
        _ = try PostgreSQLSessionBackend(.init(url: server.url), clock: SystemClock())  // version 1 again: fine
        try server.psql("UPDATE gimlet_sessions_schema SET version = 2")
        let error = #expect(throws: SessionConfigurationError.self) {
            try PostgreSQLSessionBackend(.init(url: server.url), clock: SystemClock())
        }
        #expect(error?.message.contains("newer than this Gimlet's (1)") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test func sweepsDeleteExpiredRowsInBatches() throws {
        let server = try PostgreSQLServer()
        let clock = ManualClock()
        let backend = try PostgreSQLSessionBackend(.init(url: server.url + "?sweep_interval=0"), clock: clock)
        for _ in 0..<30 { try backend.commit([SessionChange(id: .random(), upserts: ["a": 1, "b": 2], timeToLive: 10)]) }
        let keeper = SessionID.random()
        try backend.commit([SessionChange(id: keeper, upserts: ["k": 1], timeToLive: 1000)])
        clock.advance(by: 11)
        #expect(try backend.sweep(limit: 25) == 25)
        #expect(try backend.sweep(limit: 100) == 35)
        #expect(try backend.sweep(limit: 100) == 0)
        #expect(try server.psql("SELECT count(*) FROM gimlet_sessions") == "1\n")
        #expect(try backend.load([keeper]) == [keeper: ["k": 1]])
    }

    /// Server down: the backend's calls fail (the request's 503) and say
    /// why; server back: the first call works, on a new connection, with
    /// the dead pooled ones dropped unseen.
    @Test func anOutageFailsCallsThenRecoversWithoutAFailedOne() throws {
        let server = try PostgreSQLServer()
        let backend = try PostgreSQLSessionBackend(.init(url: server.url + "?timeout_ms=500"), clock: SystemClock())
        let id = SessionID.random()
        try backend.commit([SessionChange(id: id, upserts: ["k": 1], timeToLive: 600)])
        server.stop()
        let error = #expect(throws: SessionBackendError.self) { try backend.load([id]) }
        #expect(error?.backend.hasPrefix("postgresql://127.0.0.1:") == true)
        try server.restart()
        #expect(try backend.load([id]) == [id: ["k": 1]], "no failed call once the server answers")
        #expect(backend.poolStatistics.open == 1)
    }

    @Test(arguments: [
        ("postgresql://app:s%40cret@db.internal:6543/sessions?table=web_sessions&sslmode=require",
         [("user", "app"), ("password", "s@cret"), ("port", "6543"), ("host", "db.internal"), ("dbname", "sessions"),
          ("sslmode", "require"), ("connect_timeout", "2")]),
        ("postgresql:///app?host=/var/run/postgresql", [("dbname", "app"), ("host", "/var/run/postgresql"), ("connect_timeout", "2")]),
        ("postgres://db/app?connect_timeout=9", [("host", "db"), ("dbname", "app"), ("connect_timeout", "9")]),
    ])
    func urls(url: String, parameters: [(String, String)]) throws {
        let configuration = try PostgreSQLSessionBackend.Configuration(url: url)
        #expect(configuration.parameters.map { "\($0.0)=\($0.1)" } == parameters.map { "\($0.0)=\($0.1)" })
    }

    @Test(arguments: [
        ("postgresql://host", "needs a database name"),
        ("postgresql://host:0/app", "port must be a number"),
        ("postgresql://host/app?table=Bad-Name", "table must be a lower-case identifier"),
        ("postgresql://host/app?colour=red", "unknown option \"colour\""),
        ("postgresql://host/app?timeout_ms=0", "timeout_ms must be a positive number"),
    ])
    func badURLsSayWhatIsWrong(url: String, message: String) {
        let error = #expect(throws: SessionConfigurationError.self) { try PostgreSQLSessionBackend.Configuration(url: url) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}

extension PostgreSQLSessionBackend {
    /// A backend on `configuration` with `clock`, logging to the tests' logger.
    convenience init(_ configuration: Configuration, clock: any SessionClock) throws {
        var configuration = configuration
        configuration.clock = clock
        try self.init(configuration, logger: Logger(label: "test"))
    }
}
