import Foundation
import Logging
import Synchronization

/// A thread in every serving process that looks at its own worker threads
/// ten times a second, as php-fpm's master does for its children.
///
/// - It writes the process's heartbeat to the ``Scoreboard``; a supervisor
///   that sees it go silent (a stopped or wedged process) replaces the worker.
/// - A request running past `--slow-request` is logged once, with the
///   stack of the thread running it (``StackCapture``).
/// - A request running past `--request-timeout` is logged at `critical`
///   with its stack, and again every timeout interval while it runs. Async
///   code is cancelled at the deadline by itself; synchronous code cannot
///   be, and under `--workers` the supervisor kills the worker a second
///   after this line.
final class Watchdog: Sendable {
    private let scoreboard: Scoreboard
    private let slot: Int
    private let settings: OperationsSettings
    private let supervised: Bool
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)

    init(scoreboard: Scoreboard, slot: Int, settings: OperationsSettings, supervised: Bool, logger: Logger) {
        self.scoreboard = scoreboard
        self.slot = slot
        self.settings = settings
        self.supervised = supervised
        self.logger = logger
    }

    /// Starts the thread; it runs until ``stop()``.
    func start() {
        if settings.slowRequest != nil || settings.requestTimeout != nil, !StackCapture.install() {
            logger.warning("cannot install the stack-capture signal handler; slow and stuck requests are logged without stacks")
        }
        let thread = Thread { [self] in run() }
        thread.name = "gimlet-watchdog"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func run() {
        // Per worker thread: the request already logged as slow, and when a stuck one was last logged.
        var loggedSlow: [Int: UInt64] = [:]
        var loggedStuck: [Int: (serial: UInt64, at: Double)] = [:]
        while !stopped.load(ordering: .relaxed) {
            scoreboard.beat(slot)
            scoreboard.storeConnections(slot)
            scoreboard.storeSecurityEvents(slot)
            scoreboard.storeCommits(slot)
            for thread in 0..<scoreboard.threadCapacity {
                guard let current = scoreboard.current(slot, thread) else { continue }
                if let timeout = settings.requestTimeout?.seconds, current.seconds >= timeout {
                    let last = loggedStuck[thread]
                    if last?.serial != current.serial || current.seconds - (last?.at ?? 0) >= timeout {
                        loggedStuck[thread] = (current.serial, current.seconds)
                        logStuck(current, timeout: timeout)
                    }
                } else if let slow = settings.slowRequest?.seconds, current.seconds >= slow,
                          loggedSlow[thread] != current.serial {
                    loggedSlow[thread] = current.serial
                    logger.warning("slow request still running", metadata: [
                        "method": "\(current.method)", "path": "\(current.path)", "request_id": "\(current.requestID)",
                        "running_ms": "\(Int(current.seconds * 1000))", "stack": "\(stack(of: current))",
                    ])
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    private func logStuck(_ current: Scoreboard.CurrentRequest, timeout: Double) {
        let consequence = supervised
            ? "the supervisor kills this worker and starts another; the web server gets no answer for it"
            : "a synchronous handler cannot be interrupted; it keeps its thread until it returns"
        logger.critical("request past the \(Self.format(timeout)) s timeout: \(consequence)", metadata: [
            "method": "\(current.method)", "path": "\(current.path)", "request_id": "\(current.requestID)",
            "running_s": "\(Self.format(current.seconds))", "stack": "\(stack(of: current))",
        ])
    }

    private func stack(of current: Scoreboard.CurrentRequest) -> String {
        let frames = StackCapture.frames(of: pthread_t(current.handle))
        return frames.isEmpty ? "(not available)" : frames.prefix(24).joined(separator: " <- ")
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}
