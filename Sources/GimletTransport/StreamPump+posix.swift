// The system calls of streaming responses: non-blocking sends on handed-off
// connections, and one epoll set that watches them all.
import CLinuxEvents
import Foundation
@_spi(GimletInlined) import GimletSystem
import GimletHTTP
import Glibc
import Logging
import Synchronization

/// How a transport frames a streaming response on its connection.
package protocol StreamFraming: Sendable {
    /// `bytes` as they go on the wire (FastCGI: in `FCGI_STDOUT` records).
    func frame(_ bytes: [UInt8]) -> [UInt8]
    /// What ends the response (FastCGI: an empty `FCGI_STDOUT` record and
    /// `FCGI_END_REQUEST`; SCGI: nothing, the connection closes).
    var trailer: [UInt8] { get }
}

/// Runs streaming responses (``GimletHTTP/ResponseStream``) without
/// worker threads: each producer runs as a task on Swift's global
/// executor, and its connection is watched by one thread in one epoll set.
///
/// A write goes out at once when the socket takes it (non-blocking);
/// what the socket does not take waits here, and a producer that gets
/// more than ``bufferLimit`` ahead waits, without a thread, until the web
/// server has read it. Input or a hang-up on the connection means the web
/// server gave up (nginx closes it, or sends `FCGI_ABORT_REQUEST`, when its
/// client leaves): the producer's task is cancelled and the connection
/// closed. Streams that have been quiet for their heartbeat interval get
/// their heartbeat bytes (server-sent events: a comment line).
///
/// ```swift
/// let pump = StreamPump(logger: logger)
/// pump.start(descriptor: fd, framing: framing, stream: response.stream!)   // after the headers
/// ```
package final class StreamPump: Sendable {
    /// The most bytes one stream may have waiting before its producer waits.
    package static let bufferLimit = 64 * 1024

    private let logger: Logger
    // protected by: the mutex. The epoll set (made with the pump), whether its
    // thread runs (started with the first stream), the streams by their
    // number, and the last number given. Epoll events carry the number, not
    // the descriptor: a descriptor closed by one thread can be a new
    // stream's before the pump thread reads an event the old one left (at
    // the open-file limit, the next connection takes the lowest free
    // number), and that event would end the new stream after its first write.
    private let state = Mutex<(epoll: Int32, running: Bool, streams: [UInt64: PumpedStream], lastID: UInt64)>((-1, false, [:], 0))
    /// Streams running now.
    package let open = Atomic<Int>(0)
    /// Streams whose web server went away before they ended (their producers cancelled).
    package let cancelled = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)

    /// A pump; its epoll set is made now, so that a process at its
    /// open-file limit can still start a stream (its thread waits for the first).
    package init(logger: Logger) {
        self.logger = logger
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        state.withLock { $0.epoll = epoll }
    }

    /// Takes over `descriptor` (its headers already written) and runs
    /// `stream`'s producer into it; the caller must not touch it again.
    package func start(descriptor: Int32, framing: any StreamFraming, stream: ResponseStream) {
        guard let epoll = ensureThread() else {
            logger.error("cannot watch streaming responses (epoll); the stream was closed")
            SystemCall.close(descriptor)
            return
        }
        _ = try? SystemCall.addFlag(O_NONBLOCK, to: descriptor, name: "O_NONBLOCK")
        let pumped = state.withLock { state in
            state.lastID += 1
            let pumped = PumpedStream(id: state.lastID, descriptor: descriptor, framing: framing,
                                      heartbeat: stream.heartbeatInterval, heartbeatBytes: framing.frame(stream.heartbeatBytes))
            state.streams[pumped.id] = pumped
            return pumped
        }
        open.add(1, ordering: .relaxed)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        event.data.u64 = pumped.id
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0 else {
            end(pumped, cancelled: true)
            return
        }
        let sink = PumpSink(pump: self, stream: pumped)
        let logger = self.logger
        let task = Task.detached {
            do {
                try await stream.run(into: sink)
            } catch is CancellationError {
            } catch {
                logger.error("a streaming response's producer failed; the response ends here", metadata: ["error": "\(error)"])
            }
            self.producerEnded(pumped)
        }
        let gone = pumped.lock.withLock { state -> Bool in
            state.task = task
            return state.gone
        }
        if gone { task.cancel() }
    }

    /// Stops every stream: their producers are cancelled, their connections closed.
    package func shutdown() {
        finished.store(true, ordering: .releasing)
        let all = state.withLock { Array($0.streams.values) }
        for stream in all { end(stream, cancelled: true) }
    }

    // MARK: - The producer's side

    /// Queues `bytes` (framed) and sends what the socket takes now.
    ///
    /// - Returns: whether the producer may go on (`false`: over the limit, wait).
    /// - Throws: `CancellationError` when the connection is gone.
    fileprivate func enqueue(_ bytes: [UInt8], on stream: PumpedStream) throws -> Bool {
        let framed = stream.framing.frame(bytes)
        return try stream.lock.withLock { state throws -> Bool in
            guard !state.gone else { throw CancellationError() }
            state.pending += framed
            state.lastWrite = .now
            try flush(stream, &state)
            return state.pending.count - state.offset <= Self.bufferLimit
        }
    }

    /// Waits until the stream's backlog is under the limit again.
    fileprivate func waitForRoom(_ stream: PumpedStream) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let ready = stream.lock.withLock { state -> Result<Bool, any Error> in
                    if state.gone { return .failure(CancellationError()) }
                    if state.pending.count - state.offset <= Self.bufferLimit { return .success(true) }
                    state.waiter = continuation
                    return .success(false)
                }
                switch ready {
                case .success(true): continuation.resume()
                case .success(false): break
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let waiter = stream.lock.withLock { state -> CheckedContinuation<Void, any Error>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func producerEnded(_ stream: PumpedStream) {
        let (done, lost) = stream.lock.withLock { state -> (Bool, Bool) in
            guard !state.gone else { return (true, true) }
            state.ending = true
            state.pending += stream.framing.trailer
            do { try flush(stream, &state) } catch { return (true, true) }
            return (state.pending.count == state.offset, false)
        }
        // Sent whole: closed now; else the pump thread closes it once the rest is out.
        if done { end(stream, cancelled: lost) }
    }

    // MARK: - The pump thread's side

    /// Sends what the socket takes; asks for `EPOLLOUT` when it takes less.
    /// Called with the stream's lock held.
    private func flush(_ stream: PumpedStream, _ state: inout PumpedStream.State) throws {
        // Gone: its descriptor is closed (or about to be), and its number may be another's.
        guard !state.gone else { throw CancellationError() }
        while state.offset < state.pending.count {
            let sent = state.pending.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return send(stream.descriptor, base + state.offset, buffer.count - state.offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent > 0 {
                state.offset += sent
                continue
            }
            let code = errno
            if sent < 0, code == EINTR { continue }
            if sent < 0, code == EAGAIN || code == EWOULDBLOCK {
                if !state.watchingOut { watch(stream, out: true); state.watchingOut = true }
                return
            }
            state.gone = true
            throw CancellationError()
        }
        state.pending.removeAll(keepingCapacity: state.pending.capacity <= 64 * 1024)
        state.offset = 0
        if state.watchingOut { watch(stream, out: false); state.watchingOut = false }
        if let waiter = state.waiter {
            state.waiter = nil
            waiter.resume()
        }
    }

    private func watch(_ stream: PumpedStream, out: Bool) {
        let epoll = state.withLock { $0.epoll }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (out ? EPOLLOUT.rawValue : 0)
        event.data.u64 = stream.id
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, stream.descriptor, &event)
    }

    /// Closes a stream's connection, once: its producer is cancelled if it still runs.
    private func end(_ stream: PumpedStream, cancelled wasCancelled: Bool) {
        let (task, waiter, first) = stream.lock.withLock { state -> (Task<Void, Never>?, CheckedContinuation<Void, any Error>?, Bool) in
            let first = !state.closed
            state.gone = true
            state.closed = true
            defer { state.waiter = nil }
            return (state.task, state.waiter, first)
        }
        guard first else { return }
        state.withLock { _ = $0.streams.removeValue(forKey: stream.id) }
        SystemCall.close(stream.descriptor)
        open.subtract(1, ordering: .relaxed)
        if wasCancelled {
            cancelled.add(1, ordering: .relaxed)
            task?.cancel()
        }
        waiter?.resume(throwing: CancellationError())
    }

    /// The epoll set (made again if it could not be at start), with its
    /// thread started on first use; `nil` if there is no set.
    private func ensureThread() -> Int32? {
        let (epoll, starts) = state.withLock { state -> (Int32, Bool) in
            if state.epoll < 0 { state.epoll = epoll_create1(Int32(EPOLL_CLOEXEC)) }
            guard state.epoll >= 0 else { return (-1, false) }
            defer { state.running = true }
            return (state.epoll, !state.running)
        }
        guard epoll >= 0 else { return nil }
        if starts {
            let thread = Thread { [self] in run(epoll) }
            thread.name = "gimlet-streams"
            thread.start()
        }
        return epoll
    }

    /// The pump thread: writes what sockets take, ends streams whose web
    /// server left, and sends heartbeats; wakes at least once a second.
    private func run(_ epoll: Int32) {
        var events = [epoll_event](repeating: epoll_event(), count: 128)
        var lastBeat = ContinuousClock.now
        while !finished.load(ordering: .acquiring) {
            let count = events.withUnsafeMutableBufferPointer { buffer in
                epoll_wait(epoll, buffer.baseAddress, Int32(buffer.count), 1000)
            }
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                // A stream already ended (its number is never given again) is skipped.
                guard let stream = state.withLock({ $0.streams[event.data.u64] }) else { continue }
                if event.events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                    // The web server sends nothing more on a stream's connection
                    // but an abort or its close: either way, it is gone.
                    end(stream, cancelled: !stream.lock.withLock { $0.ending })
                    continue
                }
                if event.events & EPOLLOUT.rawValue != 0 {
                    let done = stream.lock.withLock { state -> Bool in
                        do { try flush(stream, &state) } catch { return true }
                        return state.ending && state.pending.count == state.offset
                    }
                    if done { end(stream, cancelled: !stream.lock.withLock { $0.ending }) }
                }
            }
            let now = ContinuousClock.now
            if now - lastBeat >= .seconds(1) {
                lastBeat = now
                beat(now)
            }
        }
    }

    /// Sends the heartbeat of every stream quiet for its interval.
    private func beat(_ now: ContinuousClock.Instant) {
        let all = state.withLock { Array($0.streams.values) }
        for stream in all {
            guard let interval = stream.heartbeat else { continue }
            let broken = stream.lock.withLock { state -> Bool in
                guard !state.gone, !state.ending, now - state.lastWrite >= interval else { return false }
                state.pending += stream.heartbeatBytes
                state.lastWrite = now
                do { try flush(stream, &state) } catch { return true }
                return false
            }
            if broken { end(stream, cancelled: true) }
        }
    }
}

/// One streaming response on its connection.
///
/// `@unchecked Sendable`: its mutable state is only touched under `lock`.
private final class PumpedStream: @unchecked Sendable {
    struct State {
        var pending: [UInt8] = []
        var offset = 0
        var lastWrite = ContinuousClock.now
        var watchingOut = false
        /// The producer has ended; the trailer is queued.
        var ending = false
        /// The connection is gone (or is being closed): nothing more is sent.
        var gone = false
        var closed = false
        var task: Task<Void, Never>?
        var waiter: CheckedContinuation<Void, any Error>?
    }

    /// Its number in the pump, in its epoll events; never reused.
    let id: UInt64
    let descriptor: Int32
    let framing: any StreamFraming
    let heartbeat: Duration?
    let heartbeatBytes: [UInt8]
    let lock = Mutex(State())

    init(id: UInt64, descriptor: Int32, framing: any StreamFraming, heartbeat: Duration?, heartbeatBytes: [UInt8]) {
        self.id = id
        self.descriptor = descriptor
        self.framing = framing
        self.heartbeat = heartbeat
        self.heartbeatBytes = heartbeatBytes
    }
}

/// A producer's writes into the pump.
private struct PumpSink: StreamSink {
    let pump: StreamPump
    let stream: PumpedStream

    func write(_ bytes: [UInt8]) async throws {
        if try pump.enqueue(bytes, on: stream) { return }
        try await pump.waitForRoom(stream)
    }
}

/// SCGI: the bytes as they are; the connection's close ends the response.
package struct PlainStreamFraming: StreamFraming {
    package init() {}
    package func frame(_ bytes: [UInt8]) -> [UInt8] { bytes }
    package var trailer: [UInt8] { [] }
}
