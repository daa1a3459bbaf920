import Gimlet
import Synchronization

/// A backend that records every call to another backend, so tests can count
/// round trips and see exactly what was written.
///
/// ```swift
/// let backend = RecordingBackend()
/// // … a request …
/// #expect(backend.roundTrips == 1)
/// #expect(backend.operations == [.load([id])])
/// ```
public final class RecordingBackend: SessionBackend {
    /// One call to the backend.
    public enum Operation: Sendable, Equatable {
        /// A load of these channels.
        case load([SessionID])
        /// A commit of these changes.
        case commit([SessionChange])
        /// An increment of these counters.
        case increment([SessionID])
    }

    private let inner: any SessionBackend
    // protected by: the mutex itself.
    private let log = Mutex<[Operation]>([])
    private let failing = Atomic<Bool>(false)

    /// Records calls to `inner` (a fresh `MemoryBackend` by default).
    public init(_ inner: any SessionBackend = MemoryBackend()) { self.inner = inner }

    public var sharesAcrossProcesses: Bool { inner.sharesAcrossProcesses }
    public var name: String { "recording(\(inner.name))" }

    public func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] {
        log.withLock { $0.append(.load(ids)) }
        if failing.load(ordering: .relaxed) { throw SessionBackendError(backend: name, message: "down (simulated)") }
        return try inner.load(ids)
    }

    public func commit(_ changes: [SessionChange]) throws {
        log.withLock { $0.append(.commit(changes)) }
        if failing.load(ordering: .relaxed) { throw SessionBackendError(backend: name, message: "down (simulated)") }
        try inner.commit(changes)
    }

    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        log.withLock { $0.append(.increment(counters)) }
        if failing.load(ordering: .relaxed) { throw SessionBackendError(backend: name, message: "down (simulated)") }
        return try inner.increment(counters, window: window)
    }

    /// Every call so far, in order.
    public var operations: [Operation] { log.withLock { $0 } }
    /// The number of calls (each is one round trip).
    public var roundTrips: Int { log.withLock { $0.count } }
    /// The number of loads.
    public var loads: Int { log.withLock { $0.filter { if case .load = $0 { true } else { false } }.count } }
    /// The number of commits.
    public var commits: Int { log.withLock { $0.filter { if case .commit = $0 { true } else { false } }.count } }

    /// Forgets the calls recorded so far.
    public func reset() { log.withLock { $0.removeAll() } }

    /// Makes every call fail (as if the store were down) until set back.
    public func setFailing(_ down: Bool) { failing.store(down, ordering: .relaxed) }
}
