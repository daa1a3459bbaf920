// The only file that calls libsqlite3. Every sqlite3_* call goes through here.
import CSQLite
import Glibc
import Synchronization

/// An error from SQLite, with its result code and message.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The (extended) result code, for example 5 (`SQLITE_BUSY`).
    public let code: Int32
    /// SQLite's message, and what was being done.
    public let message: String
    /// The operating system's errno behind an I/O error (0 if none).
    public var systemErrno: Int32 = 0

    public var description: String { "\(message) (SQLite code \(code))" }

    /// The name of the primary result code (`SQLITE_BUSY`, `SQLITE_READONLY`, …),
    /// as SQLite's documentation spells it.
    public var codeName: String {
        let names: [Int32: String] = [
            SQLITE_ERROR: "SQLITE_ERROR", SQLITE_INTERNAL: "SQLITE_INTERNAL", SQLITE_PERM: "SQLITE_PERM",
            SQLITE_ABORT: "SQLITE_ABORT", SQLITE_BUSY: "SQLITE_BUSY", SQLITE_LOCKED: "SQLITE_LOCKED",
            SQLITE_NOMEM: "SQLITE_NOMEM", SQLITE_READONLY: "SQLITE_READONLY", SQLITE_INTERRUPT: "SQLITE_INTERRUPT",
            SQLITE_IOERR: "SQLITE_IOERR", SQLITE_CORRUPT: "SQLITE_CORRUPT", SQLITE_NOTFOUND: "SQLITE_NOTFOUND",
            SQLITE_FULL: "SQLITE_FULL", SQLITE_CANTOPEN: "SQLITE_CANTOPEN", SQLITE_PROTOCOL: "SQLITE_PROTOCOL",
            SQLITE_SCHEMA: "SQLITE_SCHEMA", SQLITE_TOOBIG: "SQLITE_TOOBIG", SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT",
            SQLITE_MISMATCH: "SQLITE_MISMATCH", SQLITE_MISUSE: "SQLITE_MISUSE", SQLITE_NOLFS: "SQLITE_NOLFS",
            SQLITE_AUTH: "SQLITE_AUTH", SQLITE_RANGE: "SQLITE_RANGE", SQLITE_NOTADB: "SQLITE_NOTADB",
        ]
        return names[code & 0xFF] ?? "SQLite code \(code & 0xFF)"
    }

    /// Whether the database was locked longer than the busy timeout.
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
    /// Whether SQLite could not write because the file, its directory or
    /// its file system is read-only (or no longer writable by this user).
    public var isReadOnly: Bool {
        code & 0xFF == SQLITE_READONLY || (code & 0xFF == SQLITE_IOERR && (systemErrno == EROFS || systemErrno == EACCES || systemErrno == EPERM))
    }
    /// Whether the disk (or the file system's quota) is full.
    public var isDiskFull: Bool {
        code & 0xFF == SQLITE_FULL || (code & 0xFF == SQLITE_IOERR && (systemErrno == ENOSPC || systemErrno == EDQUOT))
    }
}

extension SQLiteError {
    /// A file or directory that cannot be opened or created.
    static func cannotOpen(_ message: String) -> SQLiteError { SQLiteError(code: SQLITE_CANTOPEN, message: message) }
    /// A database this process cannot write.
    static func readOnly(_ message: String) -> SQLiteError { SQLiteError(code: SQLITE_READONLY, message: message) }
}

/// One SQLite connection with its prepared statements.
///
/// `@unchecked Sendable`: a connection is used by one thread at a time. The
/// backend's pool hands it out under its lock, the borrowing thread alone uses
/// it until it gives it back under the same lock, and the sweeper owns its own.
/// SQLite is built thread-safe (`SQLITE_THREADSAFE=1` in Debian) besides.
final class SQLiteConnection: @unchecked Sendable {
    private let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    /// The busy handler's state, retained for as long as the connection is open.
    private let busyWait: Unmanaged<BusyWait>

    /// Opens (creating if needed) the database at `path`; every wait for
    /// another connection's lock is counted in `busyWaits`.
    init(path: String, busyTimeoutMilliseconds: Int32, busyWaits: SQLiteBusyCounter = SQLiteBusyCounter()) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: "cannot open \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(db, 1)
        busyWait = Unmanaged.passRetained(BusyWait(timeoutMilliseconds: busyTimeoutMilliseconds, counter: busyWaits))
        if busyTimeoutMilliseconds > 0 {
            sqlite3_busy_handler(db, { context, count in
                guard let context else { return 0 }
                return Unmanaged<BusyWait>.fromOpaque(context).takeUnretainedValue().retry(after: count) ? 1 : 0
            }, busyWait.toOpaque())
        }
    }

    /// Whether SQLite opened the database read-only (the file is not
    /// writable by this process, whatever was asked).
    var isReadOnly: Bool { sqlite3_db_readonly(db, "main") == 1 }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
        busyWait.release()
    }

    /// Runs SQL without results (several statements allowed, no parameters).
    func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, "executing \(sql.prefix(60))") }
    }

    /// Puts the database in WAL mode. Processes starting together on a new
    /// file race to switch it, and SQLite answers the loser "database is
    /// locked" at once, without its busy handler: the switch is retried
    /// every 5 ms until `busyTimeout` has passed.
    func switchToWAL(busyTimeout: Duration) throws(SQLiteError) {
        let deadline = ContinuousClock.now + busyTimeout
        while true {
            do {
                try execute("PRAGMA journal_mode=WAL")
                return
            } catch {
                guard error.isBusy, ContinuousClock.now < deadline else { throw error }
                usleep(5_000)
            }
        }
    }

    /// An integer from a one-row query such as `PRAGMA user_version`.
    func integer(_ sql: String) throws(SQLiteError) -> Int64 {
        var result: Int64 = 0
        try run(sql, bind: []) { row in result = row.int64(0) }
        return result
    }

    /// How hard a checkpoint tries (`PRAGMA wal_checkpoint(MODE)`).
    enum CheckpointMode: String {
        /// Copy what can be copied without waiting for anyone.
        case passive = "PASSIVE"
        /// Wait for writers and readers (through the busy handler) until the WAL can start over.
        case restart = "RESTART"
    }

    /// Runs a checkpoint; returns the WAL's size in frames and how many of them are in the database file.
    func checkpoint(_ mode: CheckpointMode) throws(SQLiteError) -> (logFrames: Int64, checkpointed: Int64) {
        var result: (Int64, Int64) = (0, 0)
        try run("PRAGMA wal_checkpoint(\(mode.rawValue))", bind: []) { row in result = (row.int64(1), row.int64(2)) }
        return result
    }

    /// A bound value, or a column's value.
    typealias Value = SQLiteValue

    /// Rows the last `INSERT`, `UPDATE` or `DELETE` changed.
    var changes: Int { Int(sqlite3_changes64(db)) }

    /// The rowid of the last successful `INSERT`.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }

    /// A result row, valid only inside the callback.
    struct Row {
        fileprivate let statement: OpaquePointer

        func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

        func blob(_ column: Int32) -> [UInt8] {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let base = sqlite3_column_blob(statement, column) else { return [] }
            return Array(UnsafeRawBufferPointer(start: base, count: count))
        }

        func text(_ column: Int32) -> [UInt8] {
            guard let base = sqlite3_column_text(statement, column) else { return [] }
            let count = Int(sqlite3_column_bytes(statement, column))
            return Array(UnsafeBufferPointer(start: base, count: count))
        }

        /// How many columns the statement returns.
        var columnCount: Int32 { sqlite3_column_count(statement) }

        /// The name of a column (its `AS` name, or as SQLite names it).
        func name(_ column: Int32) -> String {
            sqlite3_column_name(statement, column).map { String(cString: $0) } ?? ""
        }

        /// A column's value, in the type SQLite stored it as.
        func value(_ column: Int32) -> Value {
            switch sqlite3_column_type(statement, column) {
            case SQLITE_INTEGER: .int(int64(column))
            case SQLITE_FLOAT: .double(sqlite3_column_double(statement, column))
            case SQLITE_TEXT: .text(String(decoding: text(column), as: UTF8.self))
            case SQLITE_BLOB: .blob(blob(column))
            default: .null
            }
        }
    }

    /// Runs a cached prepared statement with `values` bound to ?1, ?2, …, calling `row` for each result row.
    func run(_ sql: String, bind values: [Value], row: (Row) throws -> Void = { _ in }) throws(SQLiteError) {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null:
                rc = sqlite3_bind_null(statement, index)
            case .int(let number):
                rc = sqlite3_bind_int64(statement, index, number)
            case .double(let number):
                rc = sqlite3_bind_double(statement, index, number)
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes {
                    sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), gimlet_sqlite_transient())
                }
            case .text(let string):
                var string = string
                rc = string.withUTF8 {
                    sqlite3_bind_text(statement, index, $0.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) },
                                      Int32($0.count), gimlet_sqlite_transient())
                }
            }
            guard rc == SQLITE_OK else { throw error(rc, "binding parameter \(index)") }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, "running \(sql.prefix(60))") }
            do { try row(Row(statement: statement)) } catch let failure as SQLiteError { throw failure } catch {
                throw SQLiteError(code: SQLITE_ERROR, message: "\(error)")
            }
        }
    }

    /// The most prepared statements a connection keeps.
    static let cachedStatements = 128

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        // An app's SQL may vary without end: the cache starts over past a bound.
        if statements.count >= Self.cachedStatements {
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll(keepingCapacity: true)
        }
        var statement: OpaquePointer?
        var unread = false
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(db, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            // SQLite compiles the first statement and ignores the rest: say so instead.
            while let next = tail, next.pointee != 0 {
                if ![0x20, 0x09, 0x0A, 0x0D, 0x3B].contains(next.pointee) { unread = true }
                tail = next + 1
            }
            return rc
        }
        guard rc == SQLITE_OK, let statement else { throw error(rc, "preparing \(sql.prefix(60))") }
        guard !unread else {
            sqlite3_finalize(statement)
            throw SQLiteError(code: SQLITE_MISUSE, message: "one statement at a time, please: \(sql.prefix(60))")
        }
        statements[sql] = statement
        return statement
    }

    private func error(_ rc: Int32, _ doing: String) -> SQLiteError {
        var error = SQLiteError(code: sqlite3_extended_errcode(db), message: "\(doing): \(String(cString: sqlite3_errmsg(db)))")
        error.systemErrno = sqlite3_system_errno(db)
        return error
    }
}

/// How a connection waits for a lock another process holds.
///
/// SQLite's own busy timeout sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50
/// and then 100 ms at a time, so a writer that meets a lock held for half a
/// millisecond may sleep 100 ms. Session commits hold the lock for well under
/// a millisecond, so this waits 50 µs, then doubles up to 1 ms per step,
/// until the configured timeout has passed.
///
/// Used only by the connection's own thread (SQLite calls it from the
/// statement that waits), so its one mutable field needs no lock.
final class BusyWait {
    let timeout: Duration
    let counter: SQLiteBusyCounter
    var deadline = ContinuousClock.now

    init(timeoutMilliseconds: Int32, counter: SQLiteBusyCounter) {
        timeout = .milliseconds(Int(timeoutMilliseconds))
        self.counter = counter
    }

    /// The sleep before the try after `count` earlier tries of one wait: 50 µs, doubling, at most 1 ms.
    static func step(after count: Int32) -> Duration {
        min(.microseconds(50 << Int(min(max(count, 0), 5))), .milliseconds(1))
    }

    /// Whether to try the lock again; sleeps first. `count` is 0 on the first call of each wait.
    func retry(after count: Int32) -> Bool {
        let now = ContinuousClock.now
        if count == 0 { deadline = now + timeout }
        guard now < deadline else { return false }
        counter.count.add(1, ordering: .relaxed)
        let (seconds, attoseconds) = min(Self.step(after: count), deadline - now).components
        usleep(UInt32(seconds) * 1_000_000 + UInt32(attoseconds / 1_000_000_000_000))
        return true
    }
}

/// How many times connections slept waiting for another connection's lock
/// (for tests and, later, the status page).
final class SQLiteBusyCounter: Sendable {
    let count = Atomic<Int>(0)
}
