import Dispatch
import GimletBackendSupport
import Synchronization

/// Group commit for a session store: the commits that arrive while one
/// transaction runs are applied together, in the next one.
///
/// A commit that finds no transaction running leads: it takes the commits
/// waiting in the queue (up to ``batchLimit`` with its own), runs them all
/// in one transaction, and answers them. A commit that finds one running
/// joins the queue and sleeps until a leader answers it. When a leader is
/// done, it wakes the thread at the queue's head to lead the next batch,
/// unless a thread that is running anyway (a new commit) leads first and
/// takes that batch itself: no transaction waits for a sleeping thread to
/// be scheduled. (A lock handed to the next waiter did: with more threads
/// than cores, its owner was often not running, and every writer waited.)
///
/// ```swift
/// try groupCommit.commit(changes) { batch in
///     // one transaction: each request's changes in order, each one's outcome
///     batch.map { changes in Result { try apply(changes) } }
/// }
/// ```
///
/// SQLite has one writer per file: threads that each ran a transaction of
/// their own queued on it, and every transaction paid its `BEGIN`, its
/// `COMMIT` and the WAL append of every page it touched, so writes got
/// slower as threads were added; PostgreSQL flushes its WAL at every
/// commit. A batch pays these once.
package final class SessionGroupCommit: Sendable {
    /// One request's commit, waiting in the queue or being applied.
    ///
    /// `@unchecked Sendable`: `outcome` and `hinted` are read and written
    /// under the queue's lock only.
    private final class Ticket: @unchecked Sendable {
        /// What the request commits.
        let changes: [SessionChange]
        /// Set once a leader applied or refused the ticket.
        var outcome: Result<Void, any Error>?
        /// Whether its thread was woken to lead and has not looked yet.
        var hinted = false
        /// Signalled when the ticket is answered, and when its thread is to lead.
        let wake = DispatchSemaphore(value: 0)

        init(_ changes: [SessionChange]) { self.changes = changes }
    }

    private struct Queue {
        /// Tickets no leader took yet, oldest first.
        var waiting: [Ticket] = []
        /// Whether a thread runs a batch.
        var leading = false
    }

    /// What a thread does next.
    private enum Role {
        /// Run a batch: its own changes first, then these tickets'.
        case lead(others: [Ticket])
        /// Sleep on its ticket until answered or woken to lead.
        case wait(Ticket)
        /// Its ticket was answered.
        case answered(Result<Void, any Error>)
    }

    /// The most commits one transaction applies: the wait for the lock stays
    /// bounded however many threads queue (each commit takes tens of µs).
    package let batchLimit: Int
    private let queue = Mutex(Queue())

    /// Commits waiting for a leader to take them (tests).
    var waiting: Int { queue.withLock { $0.waiting.count } }

    /// A queue whose batches hold at most `batchLimit` commits.
    package init(batchLimit: Int = 64) {
        self.batchLimit = max(1, batchLimit)
    }

    /// Commits `changes` in a batch with whatever else is waiting.
    ///
    /// - Parameter apply: runs one batch, the requests' changes in order,
    ///   and returns each one's outcome in the same order. Called on the
    ///   thread that leads, never on two threads at once.
    /// - Throws: this request's error, as `apply` returned it.
    package func commit(_ changes: [SessionChange], apply: ([[SessionChange]]) -> [Result<Void, any Error>]) throws {
        var ticket: Ticket?
        while true {
            let role: Role = queue.withLock { queue in
                if let ticket, let outcome = ticket.outcome { return .answered(outcome) }
                guard queue.leading else {
                    queue.leading = true
                    // Not answered, so not taken: still waiting.
                    if let ticket { queue.waiting.removeAll { $0 === ticket } }
                    let count = min(queue.waiting.count, batchLimit - 1)
                    let others = Array(queue.waiting.prefix(count))
                    queue.waiting.removeFirst(count)
                    return .lead(others: others)
                }
                if let ticket {
                    ticket.hinted = false
                    return .wait(ticket)
                }
                let queued = Ticket(changes)
                queue.waiting.append(queued)
                return .wait(queued)
            }
            switch role {
            case .answered(let outcome):
                return try outcome.get()
            case .wait(let queued):
                ticket = queued
                queued.wake.wait()
            case .lead(let others):
                let outcomes = apply([changes] + others.map(\.changes))
                CommitTotals.commits.add(others.count + 1, ordering: .relaxed)
                CommitTotals.transactions.add(1, ordering: .relaxed)
                precondition(outcomes.count == others.count + 1,
                             "a batch of \(others.count + 1) commits got \(outcomes.count) outcomes")
                let next: Ticket? = queue.withLock { queue in
                    for (member, outcome) in zip(others, outcomes.dropFirst()) {
                        member.outcome = outcome
                    }
                    queue.leading = false
                    guard let head = queue.waiting.first, !head.hinted else { return nil }
                    head.hinted = true
                    return head
                }
                next?.wake.signal()
                for member in others {
                    member.wake.signal()
                }
                return try outcomes[0].get()
            }
        }
    }
}
