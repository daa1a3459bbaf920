// Every signal disposition Gimlet sets, in one place. The stack-capture
// signal's handler is C (CStackCapture): a handler may only do
// async-signal-safe work.
import Dispatch
import Glibc

/// How the process meets signals: ignored, or delivered to a Dispatch
/// handler on a queue (never a C handler in Swift code).
///
/// ```swift
/// let stop = ProcessSignals.handle(SIGTERM) { server.stop() }
/// defer { stop.cancel() }
/// ```
package enum ProcessSignals {
    /// Ignores `SIGPIPE` for the whole process: a client that goes away
    /// costs a failed write (`EPIPE`), not the process.
    package static func ignoreBrokenPipes() {
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Delivers `number` to `handler` on a global queue until the returned
    /// source is cancelled. The default action (most signals end the
    /// process) is turned off first, so the signal only reaches the handler.
    package static func handle(_ number: Int32, _ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        Glibc.signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        return source
    }

    /// Unblocks `numbers` on the calling thread; threads it makes later
    /// inherit the mask. A parent (a test runner, a shell's background job)
    /// may have left them blocked, and a blocked `SIGTERM` would make the
    /// process unstoppable.
    package static func unblock(_ numbers: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in numbers { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Sends `number` to the process `pid`; nothing for a pid that is not a
    /// process's (0 and -1 would signal a whole group, or everything).
    package static func send(_ number: Int32, to pid: Int32) {
        guard pid > 0 else { return }
        kill(pid, number)
    }
}
