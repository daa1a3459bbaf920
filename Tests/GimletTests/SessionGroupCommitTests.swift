import Foundation
import Synchronization
import Testing
@testable import Gimlet

/// Group commit: commits that arrive while a transaction runs share the
/// next one, and each request still gets its own outcome.
@Suite struct SessionGroupCommits {
    /// Sixteen threads, fifty commits each, through a queue whose batches
    /// take 200 µs: batches form and stay within the limit, no two run at
    /// once, every commit is applied exactly once, and each thread gets its
    /// own commit's outcome (every seventh is refused).
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
                        usleep(200)
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
        #expect(batchSizes.contains { $0 > 1 }, "no batch held more than one commit")
        #expect(batchSizes.reduce(0, +) == 800)
    }
}
