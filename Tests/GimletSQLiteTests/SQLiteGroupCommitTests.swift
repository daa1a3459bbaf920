import Foundation
import Gimlet
import Testing
@testable import GimletSQLite

/// SQLite's group commit: a batch is one transaction, and each request
/// in it still gets its own outcome.
@Suite struct SQLiteGroupCommits {
    /// In one transaction, in order: a request whose compare-and-set fails is
    /// left out with a conflict, as it would be alone, and the others commit;
    /// a later request sees what an earlier one of the batch wrote.
    @Test func aConflictInABatchIsThatRequestsAlone() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let (shared, other, third) = (SessionID.random(), SessionID.random(), SessionID.random())
        try backend.commit([SessionChange(id: shared, upserts: ["n": 1], timeToLive: 60)])
        let outcomes = backend.commitBatch([
            [SessionChange(id: shared, upserts: ["n": 2], timeToLive: 60, expected: ["n": .value(1)])],
            [SessionChange(id: other, upserts: ["a": "kept"], timeToLive: 60)],
            // Read n = 1 too, but the first request of the batch changed it.
            [SessionChange(id: shared, upserts: ["n": 3], timeToLive: 60, expected: ["n": .value(1)])],
            [SessionChange(id: third, upserts: ["b": "kept"], timeToLive: 60, expected: ["b": .absent])],
        ])
        #expect(outcomes.count == 4)
        #expect((try? outcomes[0].get()) != nil)
        #expect((try? outcomes[1].get()) != nil)
        #expect(throws: SessionConflictError.self) { try outcomes[2].get() }
        #expect((try? outcomes[3].get()) != nil)
        #expect(try backend.load([shared, other, third]) == [shared: ["n": 2], other: ["a": "kept"], third: ["b": "kept"]])
    }

    /// A statement that fails inside one request's part (here a trigger
    /// refuses its key) rolls the batch back; then each request commits
    /// alone, so the others are stored and only that one gets the error.
    @Test func aFailedStatementCostsOnlyItsRequest() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let admin = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 1000)
        try admin.execute("""
            CREATE TRIGGER refuse_poison BEFORE INSERT ON gimlet_sessions WHEN NEW.key = 'poison'
            BEGIN SELECT RAISE(ABORT, 'poisoned'); END
            """)
        let (first, second, third) = (SessionID.random(), SessionID.random(), SessionID.random())
        let outcomes = backend.commitBatch([
            [SessionChange(id: first, upserts: ["a": 1], timeToLive: 60)],
            [SessionChange(id: second, upserts: ["ok": 1, "poison": 1], timeToLive: 60)],
            [SessionChange(id: third, upserts: ["c": 3], timeToLive: 60)],
        ])
        #expect((try? outcomes[0].get()) != nil)
        let error = #expect(throws: SessionBackendError.self) { try outcomes[1].get() }
        #expect(error?.message.contains("poisoned") == true, "\(String(describing: error))")
        #expect((try? outcomes[2].get()) != nil)
        #expect(try backend.load([first, second, third]) == [first: ["a": 1], third: ["c": 3]],
                "nothing of the refused request, all of the others")
    }

    /// A lock held past the busy timeout fails the batch's `BEGIN`: every
    /// request of it gets that error, at once, not one timeout after another.
    @Test func aFailedBeginIsEveryRequestsError() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, busyTimeoutMilliseconds: 200, sweepInterval: 0),
                                               logger: testLogger)
        let other = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 0)
        try other.execute("BEGIN EXCLUSIVE")
        let start = ContinuousClock.now
        let outcomes = backend.commitBatch((0..<3).map { _ in [SessionChange(id: .random(), upserts: ["a": 1], timeToLive: 60)] })
        #expect(ContinuousClock.now - start < .seconds(2), "one busy timeout, not three")
        for outcome in outcomes {
            let error = #expect(throws: SessionBackendError.self) { try outcome.get() }
            #expect(error?.code == "SQLITE_BUSY")
        }
        try other.execute("ROLLBACK")
    }
}
