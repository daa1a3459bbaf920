// The system calls of WorkerThreadExecutor: who the worker thread is, and
// its wait for a job, its connection or its deadline.
import CLinuxEvents
@_spi(GimletInlined) import GimletSystem
import Glibc

/// A thread, to tell whether code runs on it.
struct ThreadIdentity: Sendable {
    // pthread_t is an integer on Linux: a plain value, safe to compare from any thread.
    private let id: pthread_t

    /// The calling thread.
    static var current: ThreadIdentity { ThreadIdentity(id: pthread_self()) }

    /// Whether the calling thread is this one.
    var isCurrent: Bool { pthread_equal(pthread_self(), id) != 0 }
}

/// The calling thread's executor for async requests, in a thread-specific
/// variable: made on the thread's first async request, kept for the next
/// ones, released when the thread ends.
enum ThreadExecutor {
    /// What a thread keeps. Used only by its own thread (it is reached only
    /// through the thread-specific variable), so it needs no lock.
    final class Slot {
        /// The executor the thread's next request runs on.
        var executor = WorkerThreadExecutor()
        /// Whether the thread runs `executor`'s jobs now (a request's async code).
        var running = false
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The thread's end releases what it kept.
        precondition(pthread_key_create(&key) { $0.map { Unmanaged<Slot>.fromOpaque($0).release() } } == 0,
                     "pthread_key_create failed")
        return key
    }()

    /// The calling thread's slot, made the first time.
    static var slot: Slot {
        if let kept = pthread_getspecific(key) { return Unmanaged<Slot>.fromOpaque(kept).takeUnretainedValue() }
        let slot = Slot()
        pthread_setspecific(key, Unmanaged.passRetained(slot).toOpaque())
        return slot
    }

    /// The executor whose jobs the calling thread runs now, if any.
    static var running: WorkerThreadExecutor? {
        guard let kept = pthread_getspecific(key) else { return nil }
        let slot = Unmanaged<Slot>.fromOpaque(kept).takeUnretainedValue()
        return slot.running ? slot.executor : nil
    }
}

/// The worker thread's wait: for a job another thread enqueued (an eventfd,
/// made the first time the thread has to wait), for the request's
/// connection to close, or for a deadline. Kept in the executor's locked
/// state; the executor closes it.
struct WakeUp: Sendable {
    private var descriptor: Int32 = -1

    /// What ended a wait.
    enum Reason: Equatable {
        /// ``signal()`` was called (or a signal interrupted the wait).
        case signalled
        /// The connection has bytes that are not an abort: it is not ours to read.
        case otherInput
        /// The web server closed the connection or aborted the request.
        case closed
        /// The deadline passed.
        case deadlinePassed
    }

    /// Makes the eventfd before the first wait. If none can be made, waits
    /// poll every millisecond so that jobs from other threads still run.
    mutating func prepare() {
        if descriptor < 0 {
            descriptor = (try? SystemCall.once("eventfd") { eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }) ?? -1
        }
    }

    /// Closes the eventfd, if one was made.
    mutating func close() {
        if descriptor >= 0 { SystemCall.close(descriptor) }
        descriptor = -1
    }

    /// Ends a wait that is going on or about to begin.
    func signal() {
        guard descriptor >= 0 else { return }
        // Fails only if the counter would overflow, when the waiter is woken anyway.
        _ = withUnsafeBytes(of: UInt64(1)) { try? SystemCall.writeAll(descriptor, $0, socket: false) }
    }

    /// Waits until ``signal()``, until `watch`'s connection closes (or
    /// carries an abort), or until `deadline`.
    func wait(watching watch: ConnectionWatch?, until deadline: ContinuousClock.Instant?) -> Reason {
        let fd = descriptor
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let watch { fds.append(pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)) }
        var timeout: Int32 = fd < 0 ? 1 : -1
        if let deadline {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return .deadlinePassed }
            let milliseconds = left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            timeout = Int32(clamping: timeout < 0 ? milliseconds : min(milliseconds, Int64(timeout)))
        }
        // A signal (EINTR) ends the wait like a wake-up: the caller looks again.
        let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
        if ready < 0 { return .signalled }
        if ready == 0 {
            if let deadline, ContinuousClock.now >= deadline { return .deadlinePassed }
            return .signalled
        }
        if fds[0].revents != 0 {
            var count: UInt64 = 0
            // Empties the counter; EAGAIN means another wait already did.
            _ = withUnsafeMutableBytes(of: &count) { bytes in try? SystemCall.unlessWouldBlock("read") { read(fd, bytes.baseAddress, 8) } }
            return .signalled
        }
        guard let watch, fds.count > 1, fds[1].revents != 0 else { return .signalled }
        return Self.peek(watch)
    }

    /// Whether the connection's pending input means the request is over.
    private static func peek(_ watch: ConnectionWatch) -> Reason {
        var header = [UInt8](repeating: 0, count: 8)
        let count = header.withUnsafeMutableBytes { recv(watch.descriptor, $0.baseAddress, 8, Int32(MSG_PEEK | MSG_DONTWAIT)) }
        if count == 0 { return .closed }
        if count < 0 { return errno == EAGAIN || errno == EINTR ? .signalled : .closed }
        if let abort = watch.abortRecordType, count >= 2, header[1] == abort { return .closed }
        return .otherInput
    }
}
