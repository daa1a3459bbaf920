import Foundation
import GimletBackendSupport
import GimletHTTP
@_spi(GimletInlined) import GimletSystem
import Synchronization

/// A value SQLite stores: what a statement binds to `?1`, `?2`, … and what
/// a row holds in each column.
public enum SQLiteValue: Sendable, Hashable {
    /// SQL `NULL`.
    case null
    /// An integer.
    case int(Int64)
    /// A floating-point number.
    case double(Double)
    /// Text, UTF-8.
    case text(String)
    /// Bytes.
    case blob([UInt8])

    /// The integer, or `nil` for any other type.
    public var intValue: Int64? {
        if case .int(let number) = self { number } else { nil }
    }

    /// The text, or `nil` for any other type.
    public var stringValue: String? {
        if case .text(let string) = self { string } else { nil }
    }
}

/// One result row of ``SQLiteDatabase/Statements/rows(_:_:)``.
public struct SQLiteRow: Sendable, Hashable {
    /// The columns' names, in order.
    public let columns: [String]
    /// The columns' values, in order.
    public let values: [SQLiteValue]

    /// The value of the column named `column` (the first with that name),
    /// or `.null` if there is none.
    public subscript(_ column: String) -> SQLiteValue {
        columns.firstIndex(of: column).map { values[$0] } ?? .null
    }
}

/// An app's own SQLite database, beside its sessions: the tables the app
/// defines (accounts, notes, orders), in one file in WAL mode, shared by
/// every worker thread and process on the machine.
///
/// Each call takes one of the database's connections for the calling
/// thread alone and gives it back; ``write(_:)`` runs its statements in one
/// transaction. Writes of this process queue for one lock, so they meet
/// SQLite's file lock only when another process writes; a lock held longer
/// than the busy timeout throws `SQLiteError` with ``SQLiteError/isBusy``.
///
/// ```swift
/// let database = try SQLiteDatabase(path: SQLiteDatabase.defaultPath("todos.sqlite"))
/// try database.write { try $0.execute("CREATE TABLE IF NOT EXISTS todos (owner TEXT, text TEXT)") }
/// try database.write { try $0.execute("INSERT INTO todos VALUES (?1, ?2)", [.text(user), .text(text)]) }
/// let todos = try database.read { try $0.rows("SELECT text FROM todos WHERE owner = ?1", [.text(user)]) }
///     .compactMap { $0["text"].stringValue }
/// ```
///
/// Values are always bound, never spliced into SQL. A new file is created
/// with mode 0600 (its `-wal` and `-shm` files take its mode), its
/// directory with 0700 if it is missing.
public final class SQLiteDatabase: Sendable {
    /// The file.
    public let path: String
    /// The connections; one taken out is used by that thread alone until given back.
    private let connections: Pool<SQLiteConnection>
    // protected by: the mutex itself. Held for the whole of every write
    // transaction, as the session backend's writer lock.
    private let writer = Mutex<Void>(())

    /// Opens the database at `path`, creating it (and its directory) if needed.
    ///
    /// - Parameters:
    ///   - path: the file; relative to the working directory unless it starts with `/`.
    ///   - busyTimeoutMilliseconds: how long a statement waits for another
    ///     process's lock before it throws.
    ///   - maxConnections: the most connections open at once; a thread
    ///     that finds them all in use waits up to the busy timeout.
    /// - Throws: ``SQLiteError`` if the file cannot be created, opened or
    ///   written (a file this process can only read is refused here, not at
    ///   the first write).
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000, maxConnections: Int = 16) throws {
        self.path = path
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw SQLiteError.cannotOpen("cannot create the directory \(parent) for \(path): \(error.localizedDescription)")
            }
        }
        _ = try? SystemCall.createFileIfAbsent(path, mode: 0o600)
        connections = Pool(capacity: max(1, maxConnections), waitLimit: .milliseconds(Int(busyTimeoutMilliseconds)),
                           countsAsConnections: true) {
            let connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            guard !connection.isReadOnly else {
                throw SQLiteError.readOnly("\(path) is read-only for user \(ProcessInfo.processInfo.userName); make it and its directory writable by that user")
            }
            try connection.execute("PRAGMA synchronous=NORMAL")
            try connection.execute("PRAGMA foreign_keys=ON")
            return connection
        }
        try withConnection { try $0.switchToWAL(busyTimeout: .milliseconds(Int(busyTimeoutMilliseconds))) }
    }

    /// What ``read(_:)`` and ``write(_:)`` hand their body: one connection,
    /// for the body's thread and duration only.
    public struct Statements: ~Copyable {
        fileprivate let connection: SQLiteConnection

        /// Runs one statement with `values` bound to `?1`, `?2`, …, ignoring any rows.
        ///
        /// - Returns: how many rows an `INSERT`, `UPDATE` or `DELETE` changed.
        /// - Throws: ``SQLiteError`` (a constraint, a syntax error, more than one statement).
        @discardableResult
        public func execute(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
            try connection.run(sql, bind: values)
            return connection.changes
        }

        /// Runs one statement with `values` bound to `?1`, `?2`, …, and returns its rows.
        ///
        /// - Throws: ``SQLiteError``.
        public func rows(_ sql: String, _ values: [SQLiteValue] = []) throws -> [SQLiteRow] {
            var rows: [SQLiteRow] = []
            var columns: [String]?
            try connection.run(sql, bind: values) { row in
                let count = row.columnCount
                let names = columns ?? (0..<count).map { row.name($0) }
                columns = names
                rows.append(SQLiteRow(columns: names, values: (0..<count).map { row.value($0) }))
            }
            return rows
        }

        /// The rowid of the last row this connection inserted.
        public var lastInsertRowID: Int64 { connection.lastInsertRowID }
    }

    /// Runs `body` on a connection outside any transaction: each statement
    /// sees what was committed when it started.
    ///
    /// - Throws: what `body` throws; ``SQLiteError`` if no connection can be opened.
    @discardableResult
    public func read<Result>(_ body: (borrowing Statements) throws -> Result) throws -> Result {
        try withConnection { connection in try body(Statements(connection: connection)) }
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE` … `COMMIT`):
    /// all its statements take effect, or none if it throws.
    ///
    /// - Throws: what `body` throws (after rolling back); ``SQLiteError``.
    @discardableResult
    public func write<Result>(_ body: (borrowing Statements) throws -> Result) throws -> Result {
        try withConnection { connection in
            try writer.withLock { _ in
                try connection.execute("BEGIN IMMEDIATE")
                do {
                    let result = try body(Statements(connection: connection))
                    try connection.execute("COMMIT")
                    return result
                } catch {
                    try? connection.execute("ROLLBACK")
                    throw error
                }
            }
        }
    }

    private func withConnection<Result>(_ body: (SQLiteConnection) throws -> Result) throws -> Result {
        let lease = try connections.take()
        // A failed statement is reset and a failed transaction rolled back:
        // the connection stays usable whatever went wrong.
        defer { connections.giveBack(lease) }
        return try body(lease.member)
    }

    /// A file in the app's data directory: `GIMLET_DATA_DIR`, or `data`
    /// under the working directory; always an absolute path. The session
    /// store's default, `sessions.sqlite`, lives there too.
    public static func defaultPath(_ file: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        var directory = environment["GIMLET_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        if !directory.hasPrefix("/") {
            directory = FileManager.default.currentDirectoryPath + "/" + directory
        }
        return directory + "/" + file
    }
}
