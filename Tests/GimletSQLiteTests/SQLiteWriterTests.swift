import Foundation
import Gimlet
import Synchronization
import Testing
@testable import GimletSQLite

/// How writers wait: threads of one process queue in the process, processes
/// on one file poll SQLite's lock in fine steps, and no request's commit
/// runs a checkpoint.
@Suite struct SQLiteWriters {
    /// Eight threads committing at once never meet SQLite's file lock (SQLite's
    /// own busy handler slept 1–100 ms at a time there: the 100–230 ms stalls).
    @Test func threadsOfOneProcessNeverWaitOnTheFileLock() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            let id = SessionID.random()
            for round in 0..<150 {
                do {
                    try backend.commit([SessionChange(id: id, upserts: ["t\(thread)": .int(round)], timeToLive: 60)])
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(backend.busyWaits.count.load(ordering: .relaxed) == 0, "writers of one process met SQLite's lock")
    }

    /// Another process's lock is polled for in steps of 50 µs up to 1 ms (not
    /// SQLite's 1, 2, 5, 10, …, 100 ms), and the commit goes through once it is released.
    @Test func anotherProcesssLockIsWaitedForInFineSteps() throws {
        #expect(BusyWait.step(after: 0) == .microseconds(50))
        #expect(BusyWait.step(after: 1) == .microseconds(100))
        #expect((0..<1000).allSatisfy { BusyWait.step(after: Int32($0)) <= .milliseconds(1) })

        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let other = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 0)
        try other.execute("BEGIN IMMEDIATE")
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<String?>(nil)
        let id = SessionID.random()
        Thread {
            do {
                try backend.commit([SessionChange(id: id, upserts: ["a": 1], timeToLive: 60)])
                outcome.withLock { $0 = "stored" }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            done.signal()
        }.start()
        #expect(waitUntil(seconds: 10) { backend.busyWaits.count.load(ordering: .relaxed) > 0 }, "the commit waits")
        try other.execute("ROLLBACK")
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(outcome.withLock { $0 } == "stored")
        #expect(try backend.load([id]) == [id: ["a": 1]])
    }

    /// An I/O error whose errno says read-only or full is reported as such
    /// (SQLite reports a file system remounted read-only as a write error).
    @Test func ioErrorsAreNamedByTheirErrno() {
        let write = Int32(10 | (3 << 8))  // SQLITE_IOERR_WRITE
        #expect(SQLiteError(code: write, message: "", systemErrno: EROFS).isReadOnly)
        #expect(SQLiteError(code: write, message: "", systemErrno: EACCES).isReadOnly)
        #expect(SQLiteError(code: write, message: "", systemErrno: ENOSPC).isDiskFull)
        #expect(SQLiteError(code: write, message: "", systemErrno: EDQUOT).isDiskFull)
        #expect(SQLiteError(code: 8, message: "").isReadOnly, "SQLITE_READONLY")
        #expect(SQLiteError(code: 13, message: "").isDiskFull, "SQLITE_FULL")
        let other = SQLiteError(code: write, message: "", systemErrno: EIO)
        #expect(!other.isReadOnly && !other.isDiskFull)
    }

    /// Request connections never checkpoint; the maintenance thread does, so
    /// the WAL is moved into the file and starts over.
    @Test func theMaintenanceThreadCheckpoints() throws {
        let files = try SQLiteFiles()
        let backend = try SQLiteSessionBackend(.init(path: files.path, sweepInterval: 0), logger: testLogger)
        let connection = try SQLiteConnection(path: files.path, busyTimeoutMilliseconds: 1000)
        let id = SessionID.random()
        for round in 0..<5000 {
            try backend.commit([SessionChange(id: id, upserts: ["k\(round % 50)": .int(round)], timeToLive: 60)])
        }
        try backend.checkpoint()
        let (frames, copied) = try connection.checkpoint(.passive)
        #expect(copied == frames, "all \(frames) frames copied into the file")
        try backend.commit([SessionChange(id: id, upserts: ["after": 1], timeToLive: 60)])
        #expect(try connection.checkpoint(.passive).logFrames < 100, "the next commit started the WAL over")
    }
}

func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}
