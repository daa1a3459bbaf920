import Foundation
import Gimlet
import GimletBackendSupport
import GimletHTTP
import Logging
import Synchronization

/// Server-side sessions in PostgreSQL: for several hosts sharing one
/// database, when SQLite's single file is outgrown.
///
/// One row per (channel id, key), the value's JSON in a `json` column, with
/// an expiry time, so two requests of one session that change different
/// keys both keep their change. Not `jsonb`, and the key is `bytea`:
/// PostgreSQL's text cannot hold U+0000, which a session's keys and string
/// values may (`jsonb` refuses `\u0000`; `json` keeps the text as written).
/// `SELECT convert_from(key, 'UTF8'), value->>'field' FROM gimlet_sessions`
/// reads them. Every request costs at most two round trips, of prepared
/// statements:
///
/// - loading both channels is one `SELECT … WHERE id IN ($1, $2)`;
/// - committing everything a request changed is one round trip of two
///   statements (libpq's pipeline mode), which run as one transaction:
///   `lock` takes an advisory lock per channel (in id order), then
///   `commit`, one statement with its parameters as binary arrays, checks
///   every key the request read and now writes (compare-and-set), and
///   applies nothing but returns the changed keys if any differ, or
///   applies all changes.
///
/// Expired rows are never returned, and are deleted by a background thread
/// in batches of 1,000, by one process at a time (the `<table>_sweep`
/// function takes a transaction-level advisory lock, and returns at once in
/// the others). Connections are pooled and checked before reuse without a
/// round trip, so a restarted server costs no request once it answers.
///
/// ```swift
/// let backend = try PostgreSQLSessionBackend(.init(url: "postgresql://gimlet@db.internal/app"), logger: logger)
/// ```
///
/// Schema (version 1, in `<table>_schema`), created on first use:
///
///     CREATE TABLE gimlet_sessions (
///         id bytea NOT NULL, key bytea NOT NULL, value json NOT NULL, expires bigint NOT NULL,
///         PRIMARY KEY (id, key));
///     CREATE INDEX gimlet_sessions_expires ON gimlet_sessions (expires);
public final class PostgreSQLSessionBackend: SessionBackend {
    /// Where the database is and how to use it.
    public struct Configuration: Sendable {
        /// libpq's connection keywords (`host`, `port`, `dbname`, `user`,
        /// `password`, `sslmode`, `connect_timeout`, …).
        public var parameters: [(String, String)]
        /// The table; `<table>_schema` and `<table>_sweep` go with it.
        public var table: String
        /// How long a statement's answer may take; past it the request gets 503.
        public var timeoutMilliseconds: Int
        /// The most connections this process opens at once; a request finding
        /// all of them busy waits for one up to `timeoutMilliseconds`, then gets 503.
        public var maxConnections: Int
        /// Seconds between background sweeps of expired rows; 0 disables them.
        public var sweepInterval: Int
        /// The time source for expiry.
        public var clock: any SessionClock

        /// A configuration with libpq's connection keywords; the defaults suit most sites.
        public init(parameters: [(String, String)], table: String = "gimlet_sessions", timeoutMilliseconds: Int = 2000,
                    maxConnections: Int = 16, sweepInterval: Int = 300, clock: any SessionClock = SystemClock()) {
            self.parameters = parameters
            self.table = table
            self.timeoutMilliseconds = timeoutMilliseconds
            self.maxConnections = maxConnections
            self.sweepInterval = sweepInterval
            self.clock = clock
        }

        /// The value of connection keyword `keyword`, if set.
        func parameter(_ keyword: String) -> String? { parameters.last { $0.0 == keyword }?.1 }
    }

    /// The schema version this code writes.
    public static let schemaVersion: Int64 = 1

    /// The database and settings it was opened with.
    public let configuration: Configuration
    /// The connections, each with the backend's statements prepared.
    private let connections: Pool<PostgreSQLConnection>
    /// Commits that arrive while another's transaction runs, sent together in the next.
    private let groupCommit = SessionGroupCommit()
    /// Where failed sweeps and the maintenance thread's stop are reported.
    private let logger: Logger
    /// The sweeper thread, from init to ``shutdown()`` (not started with `sweepInterval` 0).
    private let sweeper: PeriodicWork

    /// Connects, creates the schema if needed, and starts the sweeper.
    ///
    /// - Throws: ``PostgreSQLError`` if the server cannot be reached or
    ///   refuses; `SessionConfigurationError` if the table holds a newer
    ///   schema or the table name is not a plain identifier.
    public init(_ configuration: Configuration, logger: Logger) throws {
        guard Self.isPlainIdentifier(configuration.table) else {
            throw SessionConfigurationError(
                "table name \(String(reflecting: configuration.table)) must be a lower-case identifier (letters, digits, _), at most 40 characters")
        }
        self.configuration = configuration
        self.logger = logger
        sweeper = PeriodicWork(name: "gimlet-pg-sweep", interval: .seconds(max(1, configuration.sweepInterval)))
        connections = Pool(capacity: configuration.maxConnections,
                           waitLimit: .milliseconds(configuration.timeoutMilliseconds),
                           countsAsConnections: true) { [configuration] in
            let connection = try PostgreSQLConnection(parameters: configuration.parameters,
                                                      timeoutMilliseconds: configuration.timeoutMilliseconds)
            try Self.prepareStatements(on: connection, table: configuration.table)
            return connection
        }
        do {
            // The schema first (the statements name its functions), then one pooled connection.
            let setup = try PostgreSQLConnection(parameters: configuration.parameters,
                                                 timeoutMilliseconds: configuration.timeoutMilliseconds)
            try Self.createSchema(on: setup, configuration)
            connections.giveBack(try connections.take())
        } catch let error as PostgreSQLError {
            throw SessionConfigurationError("session backend \(Self.name(configuration)) cannot start: \(error)")
        }
        startMaintenance()
    }

    public var sharesAcrossProcesses: Bool { true }

    public var name: String { Self.name(configuration) }

    private static func name(_ configuration: Configuration) -> String {
        let host = configuration.parameter("host") ?? "localhost"
        let port = configuration.parameter("port").map { ":\($0)" } ?? ""
        let database = configuration.parameter("dbname") ?? ""
        return host.hasPrefix("/") ? "postgresql:///\(database)?host=\(host)\(port.isEmpty ? "" : "&port=" + port.dropFirst())"
            : "postgresql://\(host)\(port)/\(database)"
    }

    public func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] {
        guard !ids.isEmpty else { return [:] }
        let now = configuration.clock.now()
        return try SessionRows.load(ids, logger: logger) { first, second, rows in
            let found = try exchange("load", [.bytes(first.bytes), .bytes((second ?? first).bytes), .text(String(now))])
            // Three NOT NULL columns: an empty one (never sent) reads as unreadable.
            for row in found.rows where row.count == 3 {
                rows.add(id: row[0] ?? [], key: row[1] ?? [], json: row[2] ?? [])
            }
        }
    }

    /// One statement: an upsert of every counter, returning each one's value and expiry.
    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        guard !counters.isEmpty else { return [] }
        let now = configuration.clock.now()
        let found = try exchange("count", [.bytes(PostgreSQLArray.bytea(counters.map(\.bytes))), .text(String(now)),
                                           .text(String(window))])
        var byID: [[UInt8]: SessionCounter] = [:]
        for row in found.rows where row.count == 3 {
            guard let id = row[0], let count = row[1].flatMap(UTF8Text.string).flatMap({ Int($0) }),
                  let expires = row[2].flatMap(UTF8Text.string).flatMap({ Int64($0) }) else { continue }
            byID[id] = SessionCounter(count: count, secondsLeft: expires - now)
        }
        // A counter the statement did not return is counted as over any limit.
        return counters.map { byID[$0.bytes] ?? SessionCounter(count: Int.max, secondsLeft: window) }
    }

    public func commit(_ changes: [SessionChange]) throws {
        guard !changes.isEmpty else { return }
        try groupCommit.commit(changes) { batch in commitBatch(batch) }
    }

    /// Applies a batch of requests' changes in one transaction and one
    /// round trip: the advisory locks of all their channels (in one order,
    /// so no two processes' batches deadlock), then each request's `commit`
    /// statement, which sees what the earlier ones wrote and changes nothing
    /// when its own compare-and-set fails (that request alone gets the
    /// ``SessionConflictError``). A statement refused for a request's data
    /// (SQLSTATE classes 22, 23) or a deadlock (40) rolls the batch back;
    /// then each request is committed alone, so only its own error reaches
    /// each. Any other failure is every request's.
    func commitBatch(_ batch: [[SessionChange]]) -> [Result<Void, any Error>] {
        let now = configuration.clock.now()
        let ids = Set(batch.joined().map(\.id.bytes)).sorted { $0.lexicographicallyPrecedes($1) }
        let statements = [(name: "lock", parameters: [PostgreSQLParameter.bytes(PostgreSQLArray.bytea(ids))])]
            + batch.map { (name: "commit", parameters: Self.parameters($0, now: now)) }
        do {
            let results = try exchange { connection throws(PostgreSQLError) in try connection.runPipeline(statements) }
            return batch.indices.map { index in
                // One result per statement, the lock's first, or the pipeline threw.
                guard results.indices.contains(index + 1) else {
                    return .failure(SessionBackendError(backend: name, message: "no answer to a commit of the batch"))
                }
                let changed = results[index + 1].rows.compactMap { $0.first.flatMap { $0 }.flatMap(UTF8Text.string) }
                return changed.isEmpty ? .success(()) : .failure(SessionConflictError(backend: name, keys: changed.sorted()))
            }
        } catch let error as SessionBackendError where batch.count > 1 && ["22", "23", "40"].contains(error.code?.prefix(2)) {
            return batch.map { changes in commitBatch([changes])[0] }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// The `commit` statement's parameters: what `changes` wipe, renew,
    /// set, delete and expect, as arrays (see ``commitStatement(_:)``).
    static func parameters(_ changes: [SessionChange], now: Int64) -> [PostgreSQLParameter] {
        var wiped = PostgreSQLArray(of: .bytea)
        var renewed = PostgreSQLArray(of: .bytea), renewedUntil = PostgreSQLArray(of: .int8)
        var setIDs = PostgreSQLArray(of: .bytea), setKeys = PostgreSQLArray(of: .bytea)
        var setValues = PostgreSQLArray(of: .text), setUntil = PostgreSQLArray(of: .int8)
        var removedIDs = PostgreSQLArray(of: .bytea), removedKeys = PostgreSQLArray(of: .bytea)
        var expectedIDs = PostgreSQLArray(of: .bytea), expectedKeys = PostgreSQLArray(of: .bytea)
        var expectedValues = PostgreSQLArray(of: .text)
        for change in changes {
            let id = change.id.bytes
            let expires = now + change.timeToLive
            if change.removeAll {
                wiped.append(id)
            } else if !change.keysExpireAlone, !change.upserts.isEmpty || change.isRenewalOnly {
                // Keys that expire alone (a user's index) are renewed by their upserts.
                renewed.append(id)
                renewedUntil.append(expires)
            }
            for (key, value) in change.upserts {
                setIDs.append(id)
                setKeys.append(key.utf8)
                setValues.append(value.json)
                setUntil.append(expires)
            }
            for key in change.removals {
                removedIDs.append(id)
                removedKeys.append(key.utf8)
            }
            for (key, expected) in change.expected {
                expectedIDs.append(id)
                expectedKeys.append(key.utf8)
                if case .value(let value) = expected { expectedValues.append(value.json) } else { expectedValues.append(nil as [UInt8]?) }
            }
        }
        return [wiped, renewed, renewedUntil, setIDs, setKeys, setValues, setUntil, removedIDs, removedKeys,
                expectedIDs, expectedKeys, expectedValues].map { .bytes($0.encoded) } + [.text(String(now))]
    }

    /// The statement that checks and applies a request's changes, after
    /// `lock` took the channels' advisory locks in the same transaction (so
    /// its snapshot sees every commit made before). It returns the expected
    /// keys ($10–$12, value NULL for absent) whose row differs, and then
    /// changes nothing; otherwise it wipes the channels $1 (all their rows
    /// but those it sets), renews the rows of channels $2 to $3 (rows
    /// already expired stay so, for the sweeper), deletes keys $8/$9 and
    /// sets $4–$7. Each row is touched by one part only, as one statement needs.
    static func commitStatement(_ table: String) -> String {
        """
        WITH expected AS MATERIALIZED (
            SELECT e.key FROM unnest($10::bytea[], $11::bytea[], $12::text[]) AS e(id, key, value)
            LEFT JOIN \(table) AS t ON t.id = e.id AND t.key = e.key AND t.expires > $13
            WHERE t.value::text IS DISTINCT FROM e.value),
        proceed AS MATERIALIZED (SELECT NOT EXISTS (SELECT FROM expected) AS ok),
        item AS MATERIALIZED (
            SELECT * FROM unnest($4::bytea[], $5::bytea[], $6::text[], $7::bigint[]) AS s(id, key, value, expires)
            WHERE (SELECT ok FROM proceed)),
        gone AS MATERIALIZED (
            SELECT * FROM unnest($8::bytea[], $9::bytea[]) AS d(id, key)
            WHERE (SELECT ok FROM proceed) AND d.id <> ALL ($1::bytea[])),
        wiped AS (
            DELETE FROM \(table) AS t WHERE (SELECT ok FROM proceed) AND t.id = ANY ($1::bytea[])
                AND NOT EXISTS (SELECT FROM item WHERE item.id = t.id AND item.key = t.key)),
        removed AS (
            DELETE FROM \(table) AS t USING gone WHERE t.id = gone.id AND t.key = gone.key
                AND NOT EXISTS (SELECT FROM item WHERE item.id = t.id AND item.key = t.key)),
        renewed AS (
            UPDATE \(table) AS t SET expires = r.expires FROM unnest($2::bytea[], $3::bigint[]) AS r(id, expires)
            WHERE (SELECT ok FROM proceed) AND t.id = r.id AND t.expires > $13 AND t.expires <> r.expires
                AND NOT EXISTS (SELECT FROM item WHERE item.id = t.id AND item.key = t.key)
                AND NOT EXISTS (SELECT FROM gone WHERE gone.id = t.id AND gone.key = t.key)),
        written AS (
            INSERT INTO \(table) (id, key, value, expires) SELECT id, key, value::json, expires FROM item
            ON CONFLICT (id, key) DO UPDATE SET value = excluded.value, expires = excluded.expires)
        SELECT key FROM expected
        """
    }

    /// Deletes up to `limit` expired rows, unless another process is
    /// sweeping now; returns how many went (-1: another was sweeping).
    @discardableResult
    public func sweep(limit: Int = 1000) throws -> Int {
        let rows = try exchange("sweep", [.text(String(configuration.clock.now())), .text(String(limit))])
        guard let value = rows.rows.first?.first.flatMap({ $0 }), let text = UTF8Text.string(value), let count = Int(text) else {
            throw SessionBackendError(backend: name, message: "unexpected answer to the sweep")
        }
        return count
    }

    /// One prepared statement on a pooled connection; a failed connection is dropped.
    ///
    /// A reused connection is checked first, without a round trip: one the
    /// server closed while it was idle (a restart, an idle timeout, a
    /// terminated backend) is dropped with every connection opened before
    /// it, and another taken, so no request pays for it. A statement is
    /// never sent twice: a connection lost after sending it may have applied it.
    func exchange(_ statement: String, _ parameters: [PostgreSQLParameter]) throws -> PostgreSQLRows {
        try exchange { connection throws(PostgreSQLError) in try connection.run(statement, parameters) }
    }

    /// `body` on a pooled connection, by the rules of ``exchange(_:_:)``.
    private func exchange<T>(_ body: (PostgreSQLConnection) throws(PostgreSQLError) -> T) throws -> T {
        do {
            return try connections.exchange(usable: { $0.isUsable }, { connection in try body(connection) }) { error, reused in
                guard let error = error as? PostgreSQLError, error.connectionLost else { return .sound }
                // Retried only when the statement was never sent on a connection that waited idle.
                let diedIdle = reused && !error.sent
                return .broken(andOlder: diedIdle, retry: diedIdle)
            }
        } catch {
            throw failure(error)  // the statement's, a lost connection, one that could not be made, or the pool exhausted
        }
    }

    /// The one place a PostgreSQL failure becomes the backend's: its message and SQLSTATE kept.
    private func failure(_ error: any Error) -> SessionBackendError {
        if let error = error as? PostgreSQLError {
            return SessionBackendError(backend: name, message: error.message, code: error.code)
        }
        return SessionBackendError(error, backend: name)
    }

    /// What the connection pool holds and has done.
    package var poolStatistics: PoolStatistics { connections.statistics }

    /// Whether `name` can be put in SQL as it is.
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, (0x61...0x7A).contains(first) || first == UInt8(ascii: "_"), name.utf8.count <= 40 else {
            return false
        }
        return name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") }
    }

    private static func prepareStatements(on connection: PostgreSQLConnection, table: String) throws {
        // Planned once per connection: a custom plan per call (the default
        // for a statement's first executions, and forever when the generic
        // plan looks no cheaper) costs the commit's several times its execution.
        try connection.execute("SET plan_cache_mode = force_generic_plan")
        // That one plan is made for the table as it is then, often empty, when
        // reading all of it is the cheapest way: the commit's plan then read
        // the whole table (by a hash join, through a sequential or bitmap
        // scan), ever more of it as sessions were added. Every statement here
        // joins a request's few ids and keys to the table's primary key, or
        // sweeps by the expiry's index: an index lookup per row is always the
        // right plan, so it is the only one these connections may choose.
        for method in ["seqscan", "bitmapscan", "hashjoin", "mergejoin"] {
            try connection.execute("SET enable_\(method) = off")
        }
        try connection.prepare("load", "SELECT id, key, value FROM \(table) WHERE id IN ($1, $2) AND expires > $3")
        try connection.prepare("lock", "SELECT pg_advisory_xact_lock(hashtextextended(encode(id, 'hex'), 0)) FROM unnest($1::bytea[]) AS id")
        try connection.prepare("commit", commitStatement(table))
        try connection.prepare("sweep", "SELECT \(table)_sweep($1::bigint, $2::integer)::text")
        // Counters (SessionBackend.increment): an expired one starts again, a live one keeps its expiry.
        try connection.prepare("count", """
            INSERT INTO \(table) AS t (id, key, value, expires)
            SELECT c, 'n'::bytea, '1'::json, $2::bigint + $3::bigint FROM unnest($1::bytea[]) AS c
            ON CONFLICT (id, key) DO UPDATE SET
                value = CASE WHEN t.expires <= $2::bigint THEN '1'::json ELSE to_json((t.value::text)::bigint + 1) END,
                expires = CASE WHEN t.expires <= $2::bigint THEN $2::bigint + $3::bigint ELSE t.expires END
            RETURNING t.id, t.value::text, t.expires::text
            """)
        try connection.prepare("listed", loadIndexedStatement(table))
        try connection.prepare("revoke", deleteIndexedStatement(table))
    }

    /// Creates the table, its index and functions, or checks the version
    /// there; processes starting together take turns (an advisory lock).
    private static func createSchema(on connection: PostgreSQLConnection, _ configuration: Configuration) throws {
        let table = configuration.table
        try connection.execute("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('gimlet schema \(table)', 0))")
        do {
            try connection.execute("CREATE TABLE IF NOT EXISTS \(table)_schema (version integer NOT NULL)")
            let version = try connection.execute("SELECT coalesce(max(version), 0) FROM \(table)_schema")
                .rows.first?.first.flatMap { $0 }.flatMap(UTF8Text.string).flatMap { Int64($0) } ?? 0
            if version > schemaVersion {
                throw SessionConfigurationError(
                    "table \(table) has session schema version \(version), newer than this Gimlet's (\(schemaVersion)); use a newer Gimlet or another table (?table=…)")
            }
            if version < schemaVersion {
                try connection.execute(schema(table))
                try connection.execute("DELETE FROM \(table)_schema; INSERT INTO \(table)_schema VALUES (\(schemaVersion))")
            }
            try connection.execute("COMMIT")
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Version 1 of the schema for `table`.
    static func schema(_ table: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS \(table) (
            id bytea NOT NULL, key bytea NOT NULL, value json NOT NULL, expires bigint NOT NULL,
            PRIMARY KEY (id, key));
        CREATE INDEX IF NOT EXISTS \(table)_expires ON \(table) (expires);

        -- Up to batch expired rows, by one process at a time (-1: another is sweeping).
        CREATE OR REPLACE FUNCTION \(table)_sweep(now bigint, batch integer) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
            gone integer;
        BEGIN
            IF NOT pg_try_advisory_xact_lock(hashtextextended('gimlet sweep \(table)', 0)) THEN
                RETURN -1;
            END IF;
            DELETE FROM \(table) WHERE ctid = ANY (ARRAY(
                SELECT ctid FROM \(table) WHERE expires <= now LIMIT batch));
            GET DIAGNOSTICS gone = ROW_COUNT;
            RETURN gone;
        END
        $$;
        """
    }

    /// Stops the sweeper and waits for it to finish what it is doing (the
    /// host calls this once it has stopped serving).
    public func shutdown() {
        guard sweeper.stop() else { return }
        logger.info("session database: sweeps stopped", metadata: ["backend": "\(name)"])
    }

    /// One background thread per backend: a sweep of expired rows every
    /// `sweepInterval` seconds, in batches, until none is left or another
    /// process sweeps. It ends at ``shutdown()``, or once the backend is gone.
    private func startMaintenance() {
        guard configuration.sweepInterval > 0 else { return }
        sweeper.start { [weak self] in
            guard let self else { return false }
            do {
                while try self.sweep() == 1000 {}
            } catch {
                self.logger.warning("sweeping expired sessions failed", metadata: ["error": "\(error)"])
            }
            return true
        }
    }
}
