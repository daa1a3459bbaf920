import Foundation
import Synchronization
import Testing
@testable import Gimlet

/// Group commit: commits that arrive while a transaction runs share the
/// next one, and each request still gets its own outcome.
@Suite struct SessionGroupCommits {
    /// Sixteen threads, fifty commits each, through a queue whose batches
    /// take 200 µs: batches stay within the limit, no two run at once, every
    /// commit is applied exactly once, and each thread gets its own commit's
    /// outcome (every seventh is refused). How they batch depends on the
    /// scheduling; the next test makes them.
    @Test func batchesFormAndEachCommitGetsItsOwnOutcome() {
        let queue = SessionGroupCommit(batchLimit: 4)
        let running = Atomic<Int>(0)
        let overlapped = Atomic<Bool>(false)
        let applied = Mutex<[String: Int]>([:])
        let sizes = Mutex<[Int]>([])
        let wrong = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { thread in
            for round in 0..<50 {
                let name = "\(thread)-\(round)"
                let refused = (thread * 50 + round) % 7 == 0
                let change = SessionChange(id: .random(), upserts: [name: refused ? "refuse" : "keep"], timeToLive: 60)
                do {
                    try queue.commit([change]) { batch in
                        if running.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
                            overlapped.store(true, ordering: .relaxed)
                        }
                        defer { running.subtract(1, ordering: .sequentiallyConsistent) }
                        usleep(200)  // the point: a transaction that lasts, so commits queue behind it
                        sizes.withLock { $0.append(batch.count) }
                        return batch.map { changes in
                            guard let (key, value) = changes.first?.upserts.first else { return .success(()) }
                            applied.withLock { $0[key, default: 0] += 1 }
                            return value == "refuse" ? .failure(SessionConflictError(backend: "test", keys: [key])) : .success(())
                        }
                    }
                    if refused { wrong.withLock { $0.append("\(name) was not refused") } }
                } catch let error as SessionConflictError {
                    if !refused || error.keys != [name] { wrong.withLock { $0.append("\(name) got \(error)") } }
                } catch {
                    wrong.withLock { $0.append("\(name) threw \(error)") }
                }
            }
        }
        #expect(wrong.withLock { $0 }.isEmpty, "\(wrong.withLock { $0.prefix(5) })")
        let ranAtOnce = overlapped.load(ordering: .relaxed)
        #expect(!ranAtOnce, "two batches ran at once")
        let counts = applied.withLock { $0 }
        #expect(counts.count == 800 && counts.values.allSatisfy { $0 == 1 }, "every commit applied exactly once")
        let batchSizes = sizes.withLock { $0 }
        #expect(batchSizes.allSatisfy { (1...4).contains($0) }, "a batch past the limit: \(batchSizes.max() ?? 0)")
        #expect(batchSizes.reduce(0, +) == 800)
    }

    /// Commits that arrive while a transaction runs are taken together by
    /// the next leader, up to the limit, oldest first: fifteen commits
    /// queued behind a held one run as batches of 4, 4, 4 and 3.
    @Test func commitsQueuedDuringATransactionShareTheNext() throws {
        let queue = SessionGroupCommit(batchLimit: 4)
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let batches = Mutex<[[String]]>([])
        let done = DispatchGroup()
        func commit(_ name: String, holding: Bool = false) {
            done.enter()
            Thread {
                defer { done.leave() }
                try? queue.commit([SessionChange(id: .random(), upserts: [name: 1], timeToLive: 60)]) { batch in
                    if holding {
                        inside.signal()
                        release.wait()
                    }
                    batches.withLock { $0.append(batch.compactMap { $0.first?.upserts.keys.first }) }
                    return batch.map { _ in .success(()) }
                }
            }.start()
        }
        commit("held", holding: true)
        #expect(inside.wait(timeout: .now() + 10) == .success)
        for index in 0..<15 {
            commit("c\(index)")
            // One at a time, so the queue's order is known.
            let deadline = ContinuousClock.now + .seconds(10)
            while queue.waiting < index + 1, ContinuousClock.now < deadline { usleep(1_000) }
        }
        #expect(queue.waiting == 15)
        release.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        let names = (0..<15).map { "c\($0)" }
        #expect(batches.withLock { $0 } == [["held"], Array(names[0..<4]), Array(names[4..<8]), Array(names[8..<12]),
                                            Array(names[12..<15])])
        #expect(queue.waiting == 0)
    }
}
