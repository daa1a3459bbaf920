// The system calls of WorkerThreadExecutor: who the worker thread is, and
// its wait for a job, its connection or its deadline.
import CLinuxEvents
import Glibc
import Synchronization

/// A thread, to tell whether code runs on it.
struct ThreadIdentity: Sendable {
    // pthread_t is an integer on Linux: a plain value, safe to compare from any thread.
    private let id: pthread_t

    /// The calling thread.
    static var current: ThreadIdentity { ThreadIdentity(id: pthread_self()) }

    /// Whether the calling thread is this one.
    var isCurrent: Bool { pthread_equal(pthread_self(), id) != 0 }
}

/// The worker thread's wait: for a job another thread enqueued (an eventfd,
/// made the first time the thread has to wait), for the request's
/// connection to close, or for a deadline.
final class WakeUp: Sendable {
    private let descriptor = Mutex<Int32>(-1)

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

    deinit {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    /// The eventfd, made on first use; -1 if none could be made (then
    /// waits poll at 1 ms so that jobs from other threads still run).
    private var eventDescriptor: Int32 {
        descriptor.withLock { fd in
            if fd < 0 { fd = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }
            return fd
        }
    }

    /// Ends a wait that is going on or about to begin.
    func signal() {
        let fd = eventDescriptor
        guard fd >= 0 else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    /// Waits until ``signal()``, until `watch`'s connection closes (or
    /// carries an abort), or until `deadline`.
    func wait(watching watch: ConnectionWatch?, until deadline: ContinuousClock.Instant?) -> Reason {
        let fd = eventDescriptor
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let watch { fds.append(pollfd(fd: watch.descriptor, events: Int16(POLLIN), revents: 0)) }
        var timeout: Int32 = fd < 0 ? 1 : -1
        if let deadline {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return .deadlinePassed }
            let milliseconds = left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            timeout = Int32(clamping: timeout < 0 ? milliseconds : min(milliseconds, Int64(timeout)))
        }
        let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
        if ready < 0 { return .signalled }   // EINTR: the caller looks again
        if ready == 0 {
            if let deadline, ContinuousClock.now >= deadline { return .deadlinePassed }
            return .signalled
        }
        if fds[0].revents != 0 {
            var count: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &count) { read(fd, $0.baseAddress, 8) }
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
