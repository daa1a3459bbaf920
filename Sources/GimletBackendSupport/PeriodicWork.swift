import Foundation
import Synchronization

/// A backend's background work: one thread that runs `work` every
/// `interval` from ``start(_:)`` until ``stop()``, which waits for the run
/// under way. The owner (a backend) starts it when it opens and stops it in
/// its `shutdown()`; it also ends by itself once `work` returns false (its
/// owner is gone).
///
/// ```swift
/// let sweeper = PeriodicWork(name: "gimlet-pg-sweep", interval: .seconds(300))
/// …
/// sweeper.start { [weak self] in
///     guard let self else { return false }
///     self.sweepAll()
///     return true
/// }
/// ```
package final class PeriodicWork: Sendable {
    private let stopRequested = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)
    private let name: String
    private let interval: Duration

    /// Work for the thread `name` (15 characters at most, the kernel's
    /// limit for a thread's name), every `interval` once started.
    package init(name: String, interval: Duration) {
        self.name = name
        self.interval = interval
    }

    /// Starts the thread; the first run is one `interval` from now. Once only.
    package func start(_ work: @escaping @Sendable () -> Bool) {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let (stop, ended) = (stopRequested, ended)
        let (seconds, attoseconds) = interval.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        let name = name
        let thread = Thread {
            defer { ended.signal() }
            // Named from inside: Foundation on Linux gives a name set before
            // `start()` to the Thread object only, not to the system's thread
            // (which `top -H` and /proc show, 15 characters at most).
            Thread.current.name = name
            while stop.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .timedOut {
                guard work() else { return }
            }
        }
        thread.start()
    }

    /// Asks the thread to stop and waits for it; false if it was not running.
    @discardableResult
    package func stop() -> Bool {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return false }
        stopRequested.signal()
        ended.wait()
        return true
    }
}
