// A read deadline per worker, enforced by one thread: shutdown(2) on a
// duplicate of the connection's descriptor. POSIX calls through GimletSystem.
import Foundation
@_spi(GimletInlined) import GimletSystem
import Glibc
import Synchronization

/// How long a request may take to arrive: its head (FastCGI params, SCGI
/// header block) from the moment a worker starts reading it, and then each
/// wait for more of its body. A peer that stalls, or trickles its head,
/// loses its connection when the time is up, so it cannot hold a worker; a
/// body may be of any size as long as it keeps coming (each chunk read
/// gives the deadline a new start, as nginx's `client_body_timeout` does).
///
/// Each worker arms its deadline before it reads a request and ends it
/// once the body is read; one thread, started by ``start()``, shuts the
/// connection of an overdue worker down, and the worker's blocked read
/// returns at once. The deadline holds a duplicate of the connection's
/// descriptor, so the shutdown reaches that connection even if the worker
/// (or libfcgi) closed its own descriptor and the number was reused.
///
/// ```swift
/// let deadlines = ReadDeadlines(workers: 8, limit: .seconds(30))
/// deadlines.start()
/// let lease = deadlines.arm(worker: 0, descriptor: fd)
/// … read the head and the body …
/// if let peer = lease.end() { log("\(peer): not read in time") }
/// ```
package final class ReadDeadlines: Sendable {
    private struct Armed {
        /// A duplicate of the connection's descriptor, closed when the deadline ends.
        var descriptor: Int32
        var deadline: ContinuousClock.Instant
        /// Once the deadline passed and the connection was shut down: its peer.
        var overdue: String?
    }

    /// One worker's armed deadline; ``end()`` it once the request is read.
    package struct Lease: Sendable {
        let deadlines: ReadDeadlines
        let worker: Int

        /// Ends the deadline (again is harmless); when it had passed and the
        /// connection was shut down, the peer's address (`unix` for a unix socket).
        @discardableResult
        package func end() -> String? { deadlines.disarm(worker: worker) }

        /// Starts the deadline again from now: more of the body arrived.
        /// Nothing once it has passed (the connection is already shut down).
        package func extend() { deadlines.extend(worker: worker) }
    }

    /// How long a request may take to arrive.
    package let limit: Duration
    // protected by: the mutex; one entry per worker, nil while it is not reading.
    private let armed: Mutex<[Armed?]>
    private let finished = Atomic<Bool>(false)

    /// Deadlines of `limit` for `workers` workers.
    package init(workers: Int, limit: Duration) {
        self.limit = limit
        armed = Mutex(Array(repeating: nil, count: workers))
    }

    /// Starts the thread that enforces them; ``finish()`` stops it.
    package func start() {
        let tick = max(min(limit / 20, .milliseconds(100)), .milliseconds(5))
        let thread = Thread { [self] in
            while !finished.load(ordering: .acquiring) {
                SystemCall.sleep(microseconds: Int(tick / .microseconds(1)))
                shutDownOverdue(now: .now)
            }
        }
        thread.name = "gimlet-read-deadline"
        thread.start()
    }

    /// Stops the thread (after the last request) and lets go of what is still armed.
    package func finish() {
        finished.store(true, ordering: .releasing)
        let left = armed.withLock { entries -> [Int32] in
            defer { entries = entries.map { _ in nil } }
            return entries.compactMap { $0?.descriptor }
        }
        for descriptor in left { SystemCall.close(descriptor) }
    }

    /// Arms `worker`'s deadline for the request it starts reading on `descriptor`.
    /// If the descriptor cannot be duplicated (out of descriptors), the
    /// request is read without a deadline rather than refused.
    package func arm(worker: Int, descriptor: Int32) -> Lease {
        let copy = (try? SystemCall.once("fcntl(F_DUPFD_CLOEXEC)") { fcntl(descriptor, F_DUPFD_CLOEXEC, 0) }) ?? -1
        let previous = armed.withLock { entries -> Int32? in
            let old = entries[worker]?.descriptor
            entries[worker] = copy >= 0 ? Armed(descriptor: copy, deadline: .now + limit) : nil
            return old
        }
        if let previous { SystemCall.close(previous) }
        return Lease(deadlines: self, worker: worker)
    }

    private func disarm(worker: Int) -> String? {
        guard let ended = armed.withLock({ entries -> Armed? in
            defer { entries[worker] = nil }
            return entries[worker]
        }) else { return nil }
        SystemCall.close(ended.descriptor)
        return ended.overdue
    }

    private func extend(worker: Int) {
        let deadline = ContinuousClock.now + limit
        armed.withLock { entries in
            guard entries[worker]?.overdue == nil else { return }
            entries[worker]?.deadline = deadline
        }
    }

    /// Shuts down the connection of every worker whose deadline has passed.
    func shutDownOverdue(now: ContinuousClock.Instant) {
        armed.withLock { entries in
            for index in entries.indices {
                guard let entry = entries[index], entry.overdue == nil, now >= entry.deadline else { continue }
                entries[index]?.overdue = Self.peer(of: entry.descriptor)
                _ = shutdown(entry.descriptor, Int32(SHUT_RDWR))
            }
        }
    }

    /// The address of the peer of connected socket `fd`, for the log.
    private static func peer(of fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard named == 0 else { return "-" }
        return Int32(storage.ss_family) == AF_UNIX ? "unix" : PeerAddress(storage).text
    }
}
