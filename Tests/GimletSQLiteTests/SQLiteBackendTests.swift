import Foundation
import Gimlet
import GimletTesting
import Logging
import Testing
@testable import GimletSQLite

/// What the backends under test log to.
let testLogger = Logger(label: "test")

/// SQLite files in a temporary directory, removed afterwards.
final class SQLiteFiles {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "gimlet-sqlite-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var path: String { directory + "/sessions.sqlite" }
}

@Suite struct SQLiteBackend {
    @Test(arguments: BackendConformance.checks.map(\.name))
    func conformance(_ name: String) throws {
        let files = try SQLiteFiles()
        let clock = ManualClock()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0, clock: clock), logger: testLogger)
        try BackendConformance.run(name, on: .init(backend: backend) { clock.advance(by: $0) })
    }

    @Test(arguments: BackendConformance.checks.map(\.name))
    func memoryBackendConformance(_ name: String) throws {
        let clock = ManualClock()
        try BackendConformance.run(name, on: .init(backend: MemoryBackend(clock: clock)) { clock.advance(by: $0) })
    }

    @Test func schemaIsCreatedOnceAndANewerOneRefused() throws {
        let files = try SQLiteFiles()
        _ = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        _ = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let connection = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 100)
        #expect(try connection.integer("PRAGMA user_version") == 1)
        #expect(FileManager.default.fileExists(atPath: files.path + "-wal"), "WAL mode keeps a -wal file beside the database")
        try connection.execute("PRAGMA user_version = 7")
        let error = #expect(throws: SessionConfigurationError.self) {
            try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        }
        #expect(error?.message.contains("schema version 7") == true)
    }

    @Test func sweepDeletesExpiredRowsInBatches() throws {
        let files = try SQLiteFiles()
        let clock = ManualClock()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0, clock: clock), logger: testLogger)
        for _ in 0..<30 {
            try backend.commit([SessionChange(id: .random(), upserts: ["a": 1, "b": 2], timeToLive: 10)])
        }
        let keeper = SessionID.random()
        try backend.commit([SessionChange(id: keeper, upserts: ["k": 1], timeToLive: 1000)])
        clock.advance(by: 11)
        #expect(try backend.sweep(limit: 25) == 25)
        #expect(try backend.sweep(limit: 25) == 25)
        #expect(try backend.sweep(limit: 25) == 10)
        #expect(try backend.sweep(limit: 25) == 0)
        #expect(try backend.load([keeper]) == [keeper: ["k": 1]])
    }

    @Test func aLockHeldPastTheBusyTimeoutIsABackendError() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, busyTimeoutMilliseconds: 200, sweepInterval: 0), logger: testLogger)
        let other = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 0)
        try other.execute("BEGIN EXCLUSIVE")
        let start = ContinuousClock.now
        let error = #expect(throws: SessionBackendError.self) {
            try backend.commit([SessionChange(id: .random(), upserts: ["a": 1], timeToLive: 60)])
        }
        #expect(error?.message.contains("busy timeout of 200 ms") == true)
        #expect(error?.code == "SQLITE_BUSY", "SQLite's own code, kept")
        #expect(ContinuousClock.now - start < .seconds(5), "no hang past the timeout")
        try other.execute("ROLLBACK")
        try backend.commit([SessionChange(id: .random(), upserts: ["a": 1], timeToLive: 60)])
    }

    @Test func twoBackendsOnOneFileSeeEachOther() throws {
        let files = try SQLiteFiles()
        let first = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let second = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let id = SessionID.random()
        try first.commit([SessionChange(id: id, upserts: ["from": "first"], timeToLive: 60)])
        try second.commit([SessionChange(id: id, upserts: ["by": "second"], timeToLive: 60)])
        #expect(try first.load([id]) == [id: ["from": "first", "by": "second"]])
    }

    @Test(arguments: [
        ("sqlite:///var/lib/app/s.sqlite", "/var/lib/app/s.sqlite"), ("sqlite:rel/s.sqlite", "rel/s.sqlite"),
        ("sqlite:s.sqlite?busy_timeout_ms=100&synchronous=full", "s.sqlite"),
    ])
    func urls(url: String, path: String) throws {
        #expect(try SQLiteSessionBackend.Configuration(url: url).path == path)
    }

    @Test(arguments: ["sqlite:", "sqlite://host/x", "sqlite:x?nope=1", "sqlite:x?busy_timeout_ms=x", "sqlite:dir/",
                      "sqlite:x?=", "sqlite:x?synchronous=full&=1",  // found by fuzz-urls: trapped before
                      "postgres://x"])
    func badURLs(url: String) {
        #expect(throws: SessionConfigurationError.self) { try SQLiteSessionBackend.Configuration(url: url) }
    }
}
