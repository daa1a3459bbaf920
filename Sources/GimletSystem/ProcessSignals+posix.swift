// Every signal disposition Gimlet sets, in one place. The stack-capture
// signal's handler is C (CStackCapture): a handler may only do
// async-signal-safe work.
import Dispatch
import Glibc
import Synchronization

/// How the process meets signals: `SIGPIPE` ignored; the signals an
/// operator sends (``handled``) taken by one thread with `sigwaitinfo` and
/// given to handlers on a global queue (never a C handler in Swift code).
///
/// The handled signals are blocked from the start (``takeOver()``), so one
/// that arrives before its handler is set is not lost: it waits, and the
/// handler runs as soon as it is set. A worker that its supervisor stops
/// while it starts therefore stops once it is ready, instead of ignoring the
/// signal and being killed 30 s later. (With Dispatch's signal sources the
/// signal had to be ignored first, and the source is armed only some time
/// after `resume()`: a `SIGTERM` in between was dropped.)
///
/// ```swift
/// ProcessSignals.takeOver()              // first thing, before threads are made
/// let stop = ProcessSignals.handle(SIGTERM) { server.stop() }
/// defer { stop.cancel() }
/// ```
package enum ProcessSignals {
    /// The signals the host handles: stop (`SIGTERM`, `SIGINT`), reload
    /// (`SIGHUP`) and reopen the logs (`SIGUSR1`).
    package static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1]

    /// Ignores `SIGPIPE` for the whole process: a client that goes away
    /// costs a failed write (`EPIPE`), not the process.
    package static func ignoreBrokenPipes() {
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Blocks the ``handled`` signals on the calling thread (threads it makes
    /// later inherit the mask) and starts the thread that takes them. Call it
    /// before the process makes threads; calling it again does nothing.
    package static func takeOver() {
        _ = waiter
    }

    /// Runs `handler` on a global queue each time `number` (one of
    /// ``handled``) arrives, until the returned handle is cancelled; at once
    /// if it arrived before, unhandled. Takes over the signals first if
    /// ``takeOver()`` was not called.
    package static func handle(_ number: Int32, _ handler: @escaping @Sendable () -> Void) -> SignalHandler {
        precondition(handled.contains(number), "signal \(number) is not one ProcessSignals takes")
        takeOver()
        let registration = SignalHandler(number: number, handler: handler)
        let waiting = state.withLock { state in
            state.handlers[number] = registration
            return state.unhandled.remove(number) != nil
        }
        if waiting { DispatchQueue.global().async { handler() } }
        return registration
    }

    /// Unblocks `numbers` on the calling thread; threads it makes later
    /// inherit the mask. A parent may have left a signal blocked that the
    /// process needs delivered (the stack capture's).
    package static func unblock(_ numbers: [Int32]) {
        var set = signalSet(numbers)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Sends `number` to the process `pid`; nothing for a pid that is not a
    /// process's (0 and -1 would signal a whole group, or everything).
    package static func send(_ number: Int32, to pid: Int32) {
        guard pid > 0 else { return }
        kill(pid, number)
    }

    /// The ``handled`` signals as a set, for a child's initial mask
    /// (`posix_spawnattr_setsigmask`): blocked from its first instruction, a
    /// signal sent while it starts waits for its handler.
    package static var handledSet: sigset_t { signalSet(handled) }

    fileprivate struct State {
        var handlers: [Int32: SignalHandler] = [:]
        /// Signals that arrived with no handler set.
        var unhandled: Set<Int32> = []
    }

    // protected by: the mutex.
    fileprivate static let state = Mutex(State())

    private static let waiter: Void = {
        var set = handledSet
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // A thread of its own for the life of the process, made after the
        // block so it inherits it: it only waits. (Not a Dispatch thread:
        // those set their own masks.)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { _ in
            ProcessSignals.waitForever()
            return nil
        }, nil)
        precondition(started == 0, "cannot start the signal thread: \(systemErrorDescription(started))")
        pthread_detach(thread)
    }()

    private static func waitForever() {
        var set = handledSet
        while true {
            let number = sigwaitinfo(&set, nil)
            guard number > 0 else { continue }  // EINTR
            let handler = state.withLock { state -> (@Sendable () -> Void)? in
                if let registered = state.handlers[number] { return registered.handler }
                state.unhandled.insert(number)
                return nil
            }
            if let handler { DispatchQueue.global().async { handler() } }
        }
    }

    private static func signalSet(_ numbers: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for number in numbers { sigaddset(&set, number) }
        return set
    }
}

/// A handler set with ``ProcessSignals/handle(_:_:)``.
package final class SignalHandler: Sendable {
    let number: Int32
    let handler: @Sendable () -> Void

    init(number: Int32, handler: @escaping @Sendable () -> Void) {
        self.number = number
        self.handler = handler
    }

    /// Removes the handler; the signal is then kept for a later one.
    package func cancel() {
        ProcessSignals.state.withLock { state in
            if state.handlers[number] === self { state.handlers[number] = nil }
        }
    }
}
