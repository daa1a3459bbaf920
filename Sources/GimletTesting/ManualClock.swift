import Gimlet
import Synchronization

/// A clock that moves only when told to, for tests of expiry and renewal.
///
/// ```swift
/// let clock = ManualClock(now: 1_700_000_000)
/// clock.advance(by: 86_400)
/// ```
public final class ManualClock: SessionClock {
    private let seconds: Atomic<Int64>

    /// A clock reading `now` seconds since 1970.
    public init(now: Int64 = 1_700_000_000) { seconds = Atomic(now) }

    public func now() -> Int64 { seconds.load(ordering: .relaxed) }

    /// Moves the clock forward.
    public func advance(by delta: Int64) { seconds.add(delta, ordering: .relaxed) }

    /// Sets the clock.
    public func set(_ now: Int64) { seconds.store(now, ordering: .relaxed) }
}
