import GimletHTTP
@_spi(GimletInlined) import GimletSystem
import Logging
import Synchronization

/// Server-side session data in this process's memory, with expiry.
///
/// For development and tests: data is lost when the process stops, and
/// processes do not share it (under `spawn-fcgi -F 4` each worker process
/// would have its own sessions, so the middleware logs a warning then).
///
/// ```swift
/// let configuration = try SessionConfiguration(secrets: ["…"], backend: MemoryBackend())
/// ```
public final class MemoryBackend: SessionBackend {
    private struct Channel {
        var values: [String: SessionValue]
        var expires: Int64
    }

    private let clock: any SessionClock
    private let creator = SystemCall.processID
    private let warnedAboutFork = Atomic<Bool>(false)
    private let logger: Logger
    // protected by: the mutex itself; held only for dictionary work, never I/O.
    private let channels = Mutex<[SessionID: Channel]>([:])

    /// Creates an empty store that reads time from `clock`.
    ///
    /// - Parameters:
    ///   - clock: where session time comes from (a manual clock in tests).
    ///   - logger: where a use from several processes is reported
    ///     (the app's logger; tests may leave GimletHTTP's default).
    public init(clock: any SessionClock = SystemClock(), logger: Logger = Request.defaultLogger) {
        self.clock = clock
        self.logger = logger
    }

    public var sharesAcrossProcesses: Bool { false }

    public var name: String { "memory:" }

    public func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] {
        warnIfForked()
        let now = clock.now()
        return channels.withLock { channels in
            var found: [SessionID: [String: SessionValue]] = [:]
            for id in ids {
                guard let channel = channels[id] else { continue }
                if channel.expires <= now {
                    channels[id] = nil
                } else {
                    found[id] = channel.values
                }
            }
            return found
        }
    }

    public func commit(_ changes: [SessionChange]) throws {
        warnIfForked()
        let now = clock.now()
        try channels.withLock { channels in
            for change in changes where !change.expected.isEmpty {
                let values = channels[change.id].flatMap { $0.expires > now ? $0.values : nil } ?? [:]
                let changed = change.expected.filter { key, expected in expected != values[key].map { .value($0) } ?? .absent }
                guard changed.isEmpty else { throw SessionConflictError(backend: name, keys: changed.keys.sorted()) }
            }
            for change in changes {
                var channel = channels[change.id].flatMap { $0.expires > now ? $0 : nil }
                    ?? Channel(values: [:], expires: 0)
                if change.removeAll { channel.values = [:] }
                for key in change.removals { channel.values[key] = nil }
                for (key, value) in change.upserts { channel.values[key] = value }
                if !change.upserts.isEmpty || change.isRenewalOnly { channel.expires = now + change.timeToLive }
                channels[change.id] = channel.values.isEmpty ? nil : channel
            }
            sweep(&channels, now: now)
        }
    }

    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        warnIfForked()
        let now = clock.now()
        return channels.withLock { channels in
            counters.map { id in
                var channel = channels[id].flatMap { $0.expires > now ? $0 : nil } ?? Channel(values: [:], expires: now + window)
                let count = (channel.values[SessionCounter.key]?.intValue ?? 0) + 1
                channel.values[SessionCounter.key] = .int(count)
                channels[id] = channel
                return SessionCounter(count: count, secondsLeft: channel.expires - now)
            }
        }
    }

    /// Used in a process forked after it was made (pre-forked workers), each
    /// process has its own copy: say so once in the log.
    private func warnIfForked() {
        guard SystemCall.processID != creator, !warnedAboutFork.exchange(true, ordering: .relaxed) else { return }
        logger.warning("memory: session backend used in several processes; each keeps its own sessions. Use sqlite: or redis: to share them")
    }

    private let commitsSinceSweep = Atomic<Int>(0)

    /// Drops expired channels every 1,000 commits, so the cost stays bounded per request.
    private func sweep(_ channels: inout [SessionID: Channel], now: Int64) {
        let (count, _) = commitsSinceSweep.add(1, ordering: .relaxed)
        guard count % 1000 == 0 else { return }
        channels = channels.filter { $0.value.expires > now }
    }
}
