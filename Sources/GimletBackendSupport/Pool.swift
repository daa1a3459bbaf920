import Dispatch
import Synchronization

/// A bounded pool of things one thread uses at a time, such as backend
/// connections.
///
/// ```swift
/// let connections = Pool(capacity: 64, countsAsConnections: true) { try RedisConnection(endpoint) }
/// let lease = try connections.take()
/// do {
///     try lease.member.send(command)
///     connections.giveBack(lease)
/// } catch {
///     connections.discard(lease, andOlder: true)   // it broke: so did the idle ones, probably
/// }
/// ```
///
/// - At most `capacity` members exist at once; a `take()` beyond that waits
///   for one to come back, up to `waitLimit`, then throws ``PoolExhausted``.
/// - A member that broke is discarded, not given back; `andOlder` drops
///   every member made before it too, idle or still out (they come back to
///   be dropped), since what broke one (a restarted server) broke them all.
/// - ``statistics`` counts what a status page shows; pools that hold
///   backend connections also add to ``PoolTotals``, which the host writes
///   to its scoreboard.
///
/// `@unchecked Sendable`: the idle members and the counters live in the
/// mutex; a member taken out belongs to the thread holding its lease until
/// that thread gives it back or discards it, and is handed over only under
/// the mutex.
///
/// Only the facade is generic. The state under the lock holds members as
/// `AnyObject`, so the pool's work is compiled once, here, for concrete
/// types: `package` bodies are not inlined into other targets (Swift 6.3
/// serializes no `package` body, `@inlinable` or not), and a generic one
/// called from there would look up the metadata of `[Entry<Member>]` and
/// its kin at run time on every take, about 2,600 instructions per request
/// measured with callgrind on the Redis write path.
package final class Pool<Member: AnyObject>: @unchecked Sendable {
    /// A member taken out of the pool.
    package struct Lease {
        /// The member, for the holder's thread alone.
        package let member: Member
        /// Whether it was used before (it may have died while idle).
        package let reused: Bool
        let generation: UInt64
    }

    /// The most members that exist at once.
    package var capacity: Int { shared.capacity }
    /// How long a `take()` waits for a member when all `capacity` are out.
    package var waitLimit: Duration { shared.waitLimit }
    private let shared: PoolState
    private let make: () throws -> Member

    /// A pool of at most `capacity` members, each made by `make` when none is idle.
    ///
    /// - Parameters:
    ///   - capacity: the most members at once (at least 1).
    ///   - waitLimit: how long a take waits when all are out.
    ///   - countsAsConnections: whether its members add to ``PoolTotals``.
    ///   - make: makes a member; its error reaches the caller of `take()`.
    package init(capacity: Int, waitLimit: Duration = .seconds(5), countsAsConnections: Bool = false,
                 make: @escaping () throws -> Member) {
        shared = PoolState(capacity: capacity, waitLimit: waitLimit, countsAsConnections: countsAsConnections)
        self.make = make
    }

    /// An idle member (the one given back last), or a new one.
    ///
    /// - Throws: ``PoolExhausted`` after `waitLimit` with every member out,
    ///   or the error of `make`.
    package func take() throws -> Lease {
        switch try shared.reserve() {
        case .reuse(let entry):
            return Lease(member: unsafeDowncast(entry.member, to: Member.self), reused: true, generation: entry.generation)
        case .make(let generation):
            let member: Member
            do {
                member = try make()
            } catch {
                shared.unreserve()
                throw error
            }
            shared.made()
            return Lease(member: member, reused: false, generation: generation)
        }
    }

    /// Puts a member that still works back for the next `take()`; one made
    /// before a discard with `andOlder` is dropped instead.
    package func giveBack(_ lease: Lease) {
        shared.giveBack(PoolEntry(member: lease.member, generation: lease.generation))
    }

    /// Drops a member that broke. With `andOlder`, every member made before
    /// it goes too: the idle ones now, the ones out when they come back.
    package func discard(_ lease: Lease, andOlder: Bool = false) {
        shared.discard(generation: lease.generation, andOlder: andOlder)
    }

    /// Drops every member made so far, with no lease in hand: the idle ones
    /// now, the ones out when they come back. For a server known to be
    /// replaced while the members still work (a failover announced).
    package func retireAll() {
        shared.retire()
    }

    /// Runs `body` with a member, giving it back afterwards; a member whose
    /// `body` threw is given back too (use ``take()`` and ``discard(_:andOlder:)``
    /// when an error means the member broke).
    package func withMember<T>(_ body: (Member) throws -> T) throws -> T {
        let lease = try take()
        defer { giveBack(lease) }
        return try body(lease.member)
    }

    /// What the pool holds and has done.
    package var statistics: PoolStatistics { shared.statistics }
}

/// An idle member. `@unchecked Sendable`: it moves into and out of the
/// mutex, belonging to no thread while there (see ``Pool``).
struct PoolEntry: @unchecked Sendable {
    let member: AnyObject
    let generation: UInt64
}

/// What a take does, decided under the lock.
enum PoolStep {
    case reuse(PoolEntry)
    case make(generation: UInt64)
}

/// The untyped part of a ``Pool``: idle members, generations, counters and
/// the waiting.
final class PoolState: @unchecked Sendable {
    struct Guarded {
        var idle: [PoolEntry] = []
        /// The generation of the next member made.
        var nextGeneration: UInt64 = 0
        /// Members of a lower generation are dropped when they come back.
        var floor: UInt64 = 0
        var statistics = PoolStatistics()
        /// Takes waiting for a member to come back.
        var waiting = 0
    }

    let capacity: Int
    let waitLimit: Duration
    let countsAsConnections: Bool
    // protected by: the mutex; idle members, generations and counters.
    private let guarded = Mutex(Guarded())
    /// Wakes a take waiting for a member (only when one waits: the common
    /// path is one lock). Starts at 0, so libdispatch never sees it freed
    /// below its initial value.
    private let wakeUps = DispatchSemaphore(value: 0)

    init(capacity: Int, waitLimit: Duration, countsAsConnections: Bool) {
        self.capacity = max(1, capacity)
        self.waitLimit = waitLimit
        self.countsAsConnections = countsAsConnections
    }

    deinit {
        // Nothing is out: a lease's holder keeps the pool's owner alive.
        if countsAsConnections { PoolTotals.open.subtract(guarded.withLock { $0.statistics.open }, ordering: .relaxed) }
    }

    /// An idle member, or room (and a generation) for a new one; waits up to
    /// `waitLimit` when all `capacity` members are out.
    func reserve() throws -> PoolStep {
        var deadline: DispatchTime?
        while true {
            let step = guarded.withLock { state -> PoolStep? in
                if let entry = state.idle.popLast() {
                    state.statistics.idle -= 1
                    return .reuse(entry)
                }
                if state.statistics.open < capacity {
                    state.statistics.open += 1
                    defer { state.nextGeneration += 1 }
                    return .make(generation: state.nextGeneration)
                }
                state.waiting += 1
                if deadline == nil { state.statistics.waits += 1 }
                return nil
            }
            if let step {
                if countsAsConnections, case .reuse = step { PoolTotals.inUse.add(1, ordering: .relaxed) }
                return step
            }
            let until = deadline ?? .now() + .nanoseconds(Self.nanoseconds(waitLimit))
            deadline = until
            let woken = wakeUps.wait(timeout: until) == .success
            guarded.withLock { $0.waiting -= 1 }
            // A wake-up meant for a waiter that had given up may reach
            // this one: it looks again, under the lock.
            guard woken else { throw PoolExhausted(capacity: capacity, waitLimit: waitLimit) }
        }
    }

    /// The member a `.make` step reserved room for could not be made.
    func unreserve() {
        release { $0.statistics.open -= 1 }
    }

    /// The member a `.make` step reserved room for was made.
    func made() {
        guarded.withLock { $0.statistics.created += 1 }
        if countsAsConnections {
            PoolTotals.open.add(1, ordering: .relaxed)
            PoolTotals.inUse.add(1, ordering: .relaxed)
            PoolTotals.created.add(1, ordering: .relaxed)
        }
    }

    func giveBack(_ entry: PoolEntry) {
        var kept = true
        release { state in
            guard entry.generation >= state.floor else {
                state.statistics.open -= 1
                state.statistics.discarded += 1
                kept = false
                return
            }
            state.idle.append(entry)
            state.statistics.idle += 1
        }
        if countsAsConnections {
            PoolTotals.inUse.subtract(1, ordering: .relaxed)
            if !kept { dropped(1) }
        }
    }

    func discard(generation: UInt64, andOlder: Bool) {
        var gone: [PoolEntry] = []
        release { state in
            state.statistics.open -= 1
            state.statistics.discarded += 1
            if andOlder { gone = Self.dropIdle(below: generation + 1, in: &state) }
        }
        if countsAsConnections {
            PoolTotals.inUse.subtract(1, ordering: .relaxed)
            dropped(1 + gone.count)
        }
        // `gone` is freed as this returns, outside the lock: closing a
        // connection may block.
    }

    /// Every member made so far goes: the idle ones now, the others when they come back.
    func retire() {
        var gone: [PoolEntry] = []
        release { state in gone = Self.dropIdle(below: state.nextGeneration, in: &state) }
        if countsAsConnections { dropped(gone.count) }
    }

    /// Raises the floor to `floor` and takes out every idle member.
    private static func dropIdle(below floor: UInt64, in state: inout Guarded) -> [PoolEntry] {
        state.floor = max(state.floor, floor)
        let gone = state.idle
        state.statistics.open -= gone.count
        state.statistics.discarded += gone.count
        state.statistics.idle = 0
        state.idle.removeAll()
        return gone
    }

    var statistics: PoolStatistics { guarded.withLock { $0.statistics } }

    /// Changes the state so that a member (or room for one) is free, then
    /// wakes one waiting take, if any.
    private func release(_ change: (inout Guarded) -> Void) {
        let wake = guarded.withLock { state -> Bool in
            change(&state)
            return state.waiting > 0
        }
        if wake { wakeUps.signal() }
    }

    private func dropped(_ count: Int) {
        PoolTotals.open.subtract(count, ordering: .relaxed)
        PoolTotals.discarded.add(count, ordering: .relaxed)
    }

    private static func nanoseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    }
}

/// The backend connections of every pool of this process, for the status page.
package enum PoolTotals {
    /// Connections that exist: idle or in use.
    package static let open = Atomic<Int>(0)
    /// Connections in use by a request (or the sweeper) now.
    package static let inUse = Atomic<Int>(0)
    /// Connections made since the process began.
    package static let created = Atomic<Int>(0)
    /// Connections dropped as broken since the process began.
    package static let discarded = Atomic<Int>(0)
}

/// Every member of a pool was out for longer than its wait limit.
package struct PoolExhausted: Error, CustomStringConvertible {
    package let capacity: Int
    package let waitLimit: Duration
    package var description: String {
        "all \(capacity) pooled connections stayed in use for \(waitLimit); raise max_connections or lower the threads"
    }
}

/// What a pool holds and has done.
package struct PoolStatistics: Equatable, Sendable {
    /// Members that exist: idle or in use.
    package var open = 0
    /// Members waiting in the pool.
    package var idle = 0
    /// Members made since the pool began.
    package var created = 0
    /// Members dropped as broken (or made before one that broke).
    package var discarded = 0
    /// Takes that had to wait for a member to come back.
    package var waits = 0

    /// Members in use now.
    package var inUse: Int { open - idle }
}
