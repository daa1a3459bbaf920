import Foundation
import Testing
@testable import GimletSQLite

/// An app's own tables in SQLite (``SQLiteDatabase``), as examples/notes keeps its accounts and notes.
@Suite struct SQLiteDatabaseTests {
    @Test func valuesRoundTripBoundNeverSpliced() throws {
        let files = try SQLiteFiles()
        let database = try SQLiteDatabase(path: files.directory + "/app/own.sqlite")
        try database.write { try $0.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT, weight REAL, data BLOB, note TEXT)") }
        let name = "Robert'); DROP TABLE things;--"
        let inserted = try database.write { statements in
            try statements.execute("INSERT INTO things (name, weight, data, note) VALUES (?1, ?2, ?3, ?4)",
                                   [.text(name), .double(1.5), .blob([0, 1, 255]), .null])
            return statements.lastInsertRowID
        }
        #expect(inserted == 1)
        let rows = try database.read { try $0.rows("SELECT id, name, weight, data, note, 7 AS seven FROM things") }
        #expect(rows.count == 1)
        #expect(rows.first?.columns == ["id", "name", "weight", "data", "note", "seven"])
        #expect(rows.first?.values == [.int(1), .text(name), .double(1.5), .blob([0, 1, 255]), .null, .int(7)])
        #expect(rows.first?["name"].stringValue == name && rows.first?["missing"] == .null)
        #expect(try database.write { try $0.execute("UPDATE things SET note = ?1", [.text("x")]) } == 1, "rows changed")
    }

    @Test func aWriteThatThrowsLeavesNothingBehind() throws {
        let files = try SQLiteFiles()
        let database = try SQLiteDatabase(path: files.directory + "/own.sqlite")
        try database.write { try $0.execute("CREATE TABLE t (n INTEGER UNIQUE)") }
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try database.write { statements in
                try statements.execute("INSERT INTO t VALUES (1)")
                throw Stop()
            }
        }
        #expect(throws: SQLiteError.self) {
            try database.write { statements in
                try statements.execute("INSERT INTO t VALUES (2)")
                try statements.execute("INSERT INTO t VALUES (2)")  // UNIQUE
            }
        }
        #expect(try database.read { try $0.rows("SELECT n FROM t") }.isEmpty, "both transactions rolled back")
        try database.write { try $0.execute("INSERT INTO t VALUES (3)") }
        #expect(try database.read { try $0.rows("SELECT n FROM t") }.map { $0["n"] } == [.int(3)], "the connections still work")
    }

    @Test func oneStatementAtATime() throws {
        let files = try SQLiteFiles()
        let database = try SQLiteDatabase(path: files.directory + "/own.sqlite")
        try database.write { try $0.execute("CREATE TABLE t (n INTEGER);") }
        let error = #expect(throws: SQLiteError.self) {
            try database.write { try $0.execute("INSERT INTO t VALUES (1); DROP TABLE t") }
        }
        #expect(error?.message.contains("one statement at a time") == true, "\(String(describing: error))")
        #expect(try database.read { try $0.rows("SELECT count(*) AS n FROM t") }.first?["n"] == .int(0))
        // Many distinct statements: the cache of prepared ones starts over instead of growing.
        for number in 0..<(SQLiteConnection.cachedStatements + 10) {
            try database.write { try $0.execute("INSERT INTO t VALUES (\(number))") }
        }
        #expect(try database.read { try $0.rows("SELECT count(*) AS n FROM t") }.first?["n"] == .int(Int64(SQLiteConnection.cachedStatements + 10)))
    }

    @Test func writesFromManyThreadsAllLand() throws {
        let files = try SQLiteFiles()
        let database = try SQLiteDatabase(path: files.directory + "/own.sqlite", maxConnections: 4)
        try database.write { try $0.execute("CREATE TABLE counter (n INTEGER)") }
        try database.write { try $0.execute("INSERT INTO counter VALUES (0)") }
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<50 {
                _ = try? database.write { try $0.execute("UPDATE counter SET n = n + 1") }
            }
        }
        #expect(try database.read { try $0.rows("SELECT n FROM counter") }.first?["n"] == .int(400))
    }

    @Test func aNewFileAndItsDirectoryAreTheUsersAlone() throws {
        let files = try SQLiteFiles()
        let path = files.directory + "/private/own.sqlite"
        _ = try SQLiteDatabase(path: path)
        var status = stat()
        #expect(stat(path, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(stat(files.directory + "/private", &status) == 0 && status.st_mode & 0o777 == 0o700)
        #expect(SQLiteDatabase.defaultPath("x.sqlite", environment: ["GIMLET_DATA_DIR": "/var/lib/app"]) == "/var/lib/app/x.sqlite")
        #expect(SQLiteDatabase.defaultPath("x.sqlite", environment: [:]) == FileManager.default.currentDirectoryPath + "/data/x.sqlite")
    }
}
