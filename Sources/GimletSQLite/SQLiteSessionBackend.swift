import Foundation
import Gimlet
import GimletBackendSupport
@_spi(GimletInlined) import GimletSystem
import GimletHTTP
import Logging
import Synchronization

/// Server-side sessions in a SQLite file: the embedded default.
///
/// One row per (channel id, key) with the value's JSON and an expiry time, so
/// two requests of one session that change different keys both keep their
/// change, and a request that read a key and writes it commits only if the
/// row still holds what it read (checked inside the commit's transaction).
/// WAL mode and a busy timeout let several processes (for example
/// `spawn-fcgi -F 4`) share the file. Loading both channels is one query;
/// committing a request is one transaction, shared with the commits that
/// arrived while the one before ran (`SessionGroupCommit`). Expired rows are never returned
/// and are swept by a background thread in small batches.
///
/// ```swift
/// let backend = try SQLiteSessionBackend(.init(path: "/var/lib/app/sessions.sqlite"))
/// ```
///
/// Schema (version 1, in `PRAGMA user_version`):
///
///     CREATE TABLE gimlet_sessions (
///         id BLOB NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL,
///         PRIMARY KEY (id, key)) WITHOUT ROWID;
///     CREATE INDEX gimlet_sessions_expires ON gimlet_sessions (expires);
public final class SQLiteSessionBackend: SessionBackend {
    /// Where the file is and how to use it.
    public struct Configuration: Sendable {
        /// The database file; created with its schema on first use.
        public var path: String
        /// How long a writer waits for another's lock before giving up (then the request gets 503).
        public var busyTimeoutMilliseconds: Int32
        /// `PRAGMA synchronous=FULL` (an fsync per commit, survives power loss) instead of `NORMAL`
        /// (survives a process crash; WAL keeps the file consistent either way).
        public var synchronousFull: Bool
        /// Seconds between background sweeps of expired rows; 0 disables sweeping (the
        /// background thread still checkpoints the WAL).
        public var sweepInterval: Int
        /// The time source for expiry.
        public var clock: any SessionClock
        /// The most connections this process opens at once; a request finding
        /// all of them busy waits for one up to the busy timeout, then gets 503.
        public var maxConnections: Int

        /// A configuration for the file at `path`; the defaults suit most sites.
        public init(path: String, busyTimeoutMilliseconds: Int32 = 5000, synchronousFull: Bool = false,
                    sweepInterval: Int = 300, clock: any SessionClock = SystemClock(), maxConnections: Int = 64) {
            self.path = path
            self.maxConnections = maxConnections
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.synchronousFull = synchronousFull
            self.sweepInterval = sweepInterval
            self.clock = clock
        }
    }

    /// The schema version this code writes.
    public static let schemaVersion: Int64 = 1

    /// The file and settings it was opened with.
    public let configuration: Configuration
    /// The connections; one taken out is used by that thread alone until given back.
    private let connections: Pool<SQLiteConnection>
    // protected by: the mutex itself. Held for the whole of every write
    // transaction (a batch of commits, a counter, a sweep, the last step of
    // a checkpoint), so this process's threads never meet SQLite's file lock
    // and its busy handler's sleeps; that lock is then contended only by
    // other processes. Request commits queue in `groupCommit` first: only
    // the batch's leader takes this lock.
    private let writer = Mutex<Void>(())
    /// Commits that arrive while another's transaction runs, applied together in the next.
    private let groupCommit = SessionGroupCommit()
    /// The maintenance thread, from init to ``shutdown()``.
    private let maintenance = PeriodicWork(name: "gimlet-sqlite", interval: .milliseconds(100))
    /// Waits for another connection's lock (another process's, with `writer` held).
    let busyWaits: SQLiteBusyCounter
    /// Where unreadable rows and failed sweeps are reported.
    private let logger: Logger

    /// Opens the file, creates the schema if needed, and starts the sweeper.
    ///
    /// - Parameters:
    ///   - configuration: the file and its settings.
    ///   - logger: the app's logger (the host passes its own to the app);
    ///     the maintenance thread's failures and its stop are logged there.
    /// - Throws: ``SQLiteError`` or `SessionConfigurationError` if the file
    ///   cannot be opened or written, or holds a newer schema.
    public init(_ configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let busyWaits = SQLiteBusyCounter()
        self.busyWaits = busyWaits
        // A new database is the app's user's alone (SQLite would make it
        // 0644 less the umask, readable by a web server sharing the group);
        // its -wal and -shm files take its mode. An existing file keeps its own.
        if !configuration.path.hasPrefix(":") {
            _ = try? SystemCall.createFileIfAbsent(configuration.path, mode: 0o600)
        }
        connections = Pool(capacity: configuration.maxConnections,
                           waitLimit: .milliseconds(Int(configuration.busyTimeoutMilliseconds)),
                           countsAsConnections: true) { [configuration] in
            try Self.openConnection(configuration, busyWaits: busyWaits)
        }
        let lease = try connections.take()
        do {
            try Self.createSchema(on: lease.member, path: configuration.path,
                                  busyTimeout: .milliseconds(Int(configuration.busyTimeoutMilliseconds)))
        } catch {
            connections.discard(lease)
            throw error
        }
        connections.giveBack(lease)
        startMaintenance()
    }

    /// Sets WAL mode and creates the table, or checks the one there.
    private static func createSchema(on connection: SQLiteConnection, path: String, busyTimeout: Duration) throws {
        try connection.switchToWAL(busyTimeout: busyTimeout)
        try connection.execute("BEGIN IMMEDIATE")
        do {
            let version = try connection.integer("PRAGMA user_version")
            if version > Self.schemaVersion {
                throw SessionConfigurationError(
                    "\(path) has session schema version \(version), newer than this Gimlet's (\(Self.schemaVersion)); use a newer Gimlet or another file")
            }
            if version < Self.schemaVersion {
                try connection.execute("""
                    CREATE TABLE IF NOT EXISTS gimlet_sessions (
                        id BLOB NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL,
                        PRIMARY KEY (id, key)) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS gimlet_sessions_expires ON gimlet_sessions (expires);
                    PRAGMA user_version = \(Self.schemaVersion);
                    """)
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    public var sharesAcrossProcesses: Bool { true }

    public var name: String { "sqlite:" + configuration.path }

    public func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] {
        guard !ids.isEmpty else { return [:] }
        let now = configuration.clock.now()
        return try withConnection { connection in
            try SessionRows.load(ids, logger: logger) { first, second, rows in
                var bind: [SQLiteConnection.Value] = [.blob(first.bytes), .int(now)]
                let sql: String
                if let second {
                    sql = "SELECT id, key, value FROM gimlet_sessions WHERE id IN (?1, ?3) AND expires > ?2"
                    bind.append(.blob(second.bytes))
                } else {
                    sql = "SELECT id, key, value FROM gimlet_sessions WHERE id = ?1 AND expires > ?2"
                }
                try connection.run(sql, bind: bind) { row in rows.add(id: row.blob(0), key: row.text(1), json: row.text(2)) }
            }
        }
    }

    public func commit(_ changes: [SessionChange]) throws {
        guard !changes.isEmpty else { return }
        try groupCommit.commit(changes) { batch in commitBatch(batch) }
    }

    /// Applies a batch of requests' changes in one transaction, each request's
    /// on its own terms: one whose compare-and-set fails is left out with a
    /// ``SessionConflictError`` (what it would have got alone), the others
    /// commit. A statement that fails inside a request's part rolls the
    /// transaction back; then each request is committed alone, so only its
    /// own error reaches each. A failed `BEGIN` or `COMMIT` (a lock held past
    /// the busy timeout, a full disk) is every request's error.
    func commitBatch(_ batch: [[SessionChange]]) -> [Result<Void, any Error>] {
        let now = configuration.clock.now()
        do {
            return try withConnection { connection in try writer.withLock { _ in
                try connection.execute("BEGIN IMMEDIATE")
                do {
                    var outcomes: [Result<Void, any Error>] = []
                    outcomes.reserveCapacity(batch.count)
                    for changes in batch {
                        do {
                            let changed = try changedKeys(changes, now: now, connection: connection)
                            if changed.isEmpty {
                                try apply(changes, now: now, connection: connection)
                                outcomes.append(.success(()))
                            } else {
                                outcomes.append(.failure(SessionConflictError(backend: name, keys: changed)))
                            }
                        } catch let error as SQLiteError where batch.count > 1 {
                            throw StatementFailedInBatch(error: error)
                        }
                    }
                    try connection.execute("COMMIT")
                    return outcomes
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            } }
        } catch is StatementFailedInBatch {
            return batch.map { changes in commitBatch([changes])[0] }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// A statement of a batch failed: its requests are committed again, each alone.
    private struct StatementFailedInBatch: Error {
        let error: SQLiteError
    }

    /// The keys of `changes` whose stored JSON (unexpired) is not what the
    /// request read: empty when every key it read and writes is unchanged.
    private func changedKeys(_ changes: [SessionChange], now: Int64, connection: SQLiteConnection) throws -> [String] {
        var changed: [String] = []
        for change in changes where !change.expected.isEmpty {
            changed += try changedKeys(change, now: now, connection: connection)
        }
        return changed
    }

    /// Writes one request's changes, inside the batch's transaction.
    private func apply(_ changes: [SessionChange], now: Int64, connection: SQLiteConnection) throws {
        for change in changes {
            let id = SQLiteConnection.Value.blob(change.id.bytes)
            if change.removeAll {
                try connection.run("DELETE FROM gimlet_sessions WHERE id = ?1", bind: [id])
            } else if !change.keysExpireAlone {
                // Rows already expired must not come back to life with the renewal below.
                try connection.run("DELETE FROM gimlet_sessions WHERE id = ?1 AND expires <= ?2", bind: [id, .int(now)])
            }
            for key in change.removals {
                try connection.run("DELETE FROM gimlet_sessions WHERE id = ?1 AND key = ?2", bind: [id, .text(key)])
            }
            let expires = SQLiteConnection.Value.int(now + change.timeToLive)
            for (key, value) in change.upserts {
                try connection.run("""
                    INSERT INTO gimlet_sessions (id, key, value, expires) VALUES (?1, ?2, ?3, ?4)
                    ON CONFLICT (id, key) DO UPDATE SET value = excluded.value, expires = excluded.expires
                    """, bind: [id, .text(key), .text(String(decoding: value.json, as: UTF8.self)), expires])
            }
            // Keys that expire alone (a user's index) were renewed by their upserts.
            if !change.keysExpireAlone, !change.upserts.isEmpty || change.isRenewalOnly {
                try connection.run("UPDATE gimlet_sessions SET expires = ?2 WHERE id = ?1", bind: [id, expires])
            }
        }
    }

    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        guard !counters.isEmpty else { return [] }
        let now = configuration.clock.now()
        return try withConnection { connection in try writer.withLock { _ in
            try connection.execute("BEGIN IMMEDIATE")
            do {
                var results: [SessionCounter] = []
                for id in counters {
                    var counter = SessionCounter(count: 0, secondsLeft: window)
                    // An expired counter starts again; a live one keeps its expiry.
                    try connection.run("""

                        INSERT INTO gimlet_sessions (id, key, value, expires) VALUES (?1, ?2, '1', ?3 + ?4)
                        ON CONFLICT (id, key) DO UPDATE SET
                            value = CASE WHEN expires <= ?3 THEN '1' ELSE CAST(CAST(value AS INTEGER) + 1 AS TEXT) END,
                            expires = CASE WHEN expires <= ?3 THEN ?3 + ?4 ELSE expires END
                        RETURNING CAST(value AS INTEGER), expires
                        """, bind: [.blob(id.bytes), .text(SessionCounter.key), .int(now), .int(window)]) { row in
                        counter = SessionCounter(count: Int(row.int64(0)), secondsLeft: row.int64(1) - now)
                    }
                    results.append(counter)
                }
                try connection.execute("COMMIT")
                return results
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        } }
    }

    /// The expected keys of `change` whose stored JSON (unexpired) is not what the request read.
    private func changedKeys(_ change: SessionChange, now: Int64, connection: SQLiteConnection) throws -> [String] {
        var changed: [String] = []
        for (key, expected) in change.expected.sorted(by: { $0.key < $1.key }) {
            var current: [UInt8]?
            try connection.run("SELECT value FROM gimlet_sessions WHERE id = ?1 AND key = ?2 AND expires > ?3",
                               bind: [.blob(change.id.bytes), .text(key), .int(now)]) { row in current = row.text(0) }
            let matches = switch expected {
            case .absent: current == nil
            case .value(let value): current == value.json
            }
            if !matches { changed.append(key) }
        }
        return changed
    }

    /// Deletes up to `limit` expired rows; returns how many went.
    @discardableResult
    public func sweep(limit: Int = 1000) throws -> Int {
        let now = configuration.clock.now()
        return try withConnection { connection in try writer.withLock { _ in
            var count = 0
            try connection.run("""
                DELETE FROM gimlet_sessions WHERE (id, key) IN
                    (SELECT id, key FROM gimlet_sessions WHERE expires <= ?1 LIMIT ?2) RETURNING 1
                """, bind: [.int(now), .int(Int64(limit))]) { _ in count += 1 }
            return count
        } }
    }

    /// Runs `body` with a pooled connection; SQLite failures become `SessionBackendError`.
    ///
    /// A connection is given back whatever happened: an SQLite error is a
    /// statement's, not a broken connection's.
    private func withConnection<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        do {
            return try connections.exchange(body) { _, _ in .sound }
        } catch let error as PoolExhausted {
            throw SessionBackendError(backend: name, message: "\(error)")
        } catch let error as SQLiteError {
            let hint = if error.isBusy {
                " (locked longer than the busy timeout of \(configuration.busyTimeoutMilliseconds) ms)"
            } else if error.isReadOnly {
                " (the database file or its directory has become read-only for this process: fix its permissions or mount)"
            } else if error.isDiskFull {
                " (the disk holding the database is full: free space there)"
            } else {
                ""
            }
            throw SessionBackendError(backend: name, message: error.description + hint, code: error.codeName)
        }
    }

    /// What the connection pool holds and has done.
    package var poolStatistics: PoolStatistics { connections.statistics }

    private static func openConnection(_ configuration: Configuration, busyWaits: SQLiteBusyCounter) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: configuration.path,
                                              busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds,
                                              busyWaits: busyWaits)
        // SQLite opens a file it cannot write read-only without a word; the
        // first session write would then fail. Say so now, with who we are,
        // before any statement: reading a WAL database through a -shm file
        // it cannot write may fail first, with a "locking protocol" error.
        guard !connection.isReadOnly else {
            throw SessionConfigurationError(
                "the session database \(configuration.path) is read-only for user \(ProcessInfo.processInfo.userName); make it (and its directory, for the -wal and -shm files) writable by that user, or name another file")
        }
        try connection.execute(configuration.synchronousFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        // No checkpoint inside a request's commit: the commit that crossed
        // SQLite's 1,000-page mark copied the WAL into the file and fsynced it
        // while holding the write lock (the 50–200 ms stalls under load). The
        // maintenance thread checkpoints instead; the WAL file is cut back to
        // 64 MiB after a checkpoint if it ever grew past that.
        try connection.execute("PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864")
        return connection
    }

    /// Moves the WAL's pages into the database file, so the WAL can start
    /// over from its beginning instead of growing.
    ///
    /// First a passive checkpoint, which blocks no reader or writer and does
    /// most of the copying and the fsync. Writers go on meanwhile, so it
    /// cannot catch up with them by itself (the WAL then grew past 150 MB
    /// under load): a second one copies the few pages added since while this
    /// process's writers wait for a moment on `writer`. If
    /// other processes keep the WAL past 64 MiB even so, a `RESTART`
    /// checkpoint makes every writer wait (within the busy timeout) until it
    /// is done. Several processes may call this; one at a time does the work.
    func checkpoint() throws {
        try withConnection { connection in
            // Its figures are those of the WAL when it started: writers may
            // have added frames since. Below 16 MiB of WAL, that can wait.
            guard try connection.checkpoint(.passive).logFrames >= 4096 else { return }
            try writer.withLock { _ in
                let second = try connection.checkpoint(.passive)
                if second.checkpointed < second.logFrames, second.logFrames > 16_384 {
                    _ = try connection.checkpoint(.restart)
                }
            }
        }
    }

    /// Stops the maintenance thread and waits for it to finish what it is
    /// doing (the host calls this once it has stopped serving). Requests
    /// still work afterwards, but nothing checkpoints or sweeps.
    public func shutdown() {
        guard maintenance.stop() else { return }
        logger.info("session database: checkpoints and sweeps stopped", metadata: ["path": "\(configuration.path)"])
    }

    /// One background thread per backend: a checkpoint every 100 ms, and a
    /// sweep of expired rows every `sweepInterval` seconds (if not 0). It
    /// ends at ``shutdown()``, or once the backend is gone.
    private func startMaintenance() {
        let sweepInterval = configuration.sweepInterval
        let lastSweep = Mutex(ContinuousClock.now)
        maintenance.start { [weak self] in
            guard let self else { return false }
            do { try self.checkpoint() } catch {
                self.logger.warning("checkpointing the session database failed", metadata: ["error": "\(error)"])
            }
            guard sweepInterval > 0, lastSweep.withLock({ ContinuousClock.now - $0 >= .seconds(sweepInterval) }) else { return true }
            lastSweep.withLock { $0 = ContinuousClock.now }
            do {
                while try self.sweep() == 1000 {}
            } catch {
                self.logger.warning("sweeping expired sessions failed", metadata: ["error": "\(error)"])
            }
            return true
        }
    }
}
