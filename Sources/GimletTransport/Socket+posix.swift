// Plain POSIX and Linux calls on descriptors: listening sockets, epoll, eventfd.
import CLinuxEvents
import Glibc
import Synchronization

/// `strerror` as a Swift string.
public func systemErrorDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// The number of cores this process may run on.
public func activeProcessorCount() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

public enum SocketCalls {
    /// Whether `fd` is a listening socket (spawn-fcgi leaves one on fd 0).
    public static func isListeningSocket(_ fd: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0
    }

    /// Whether `fd` is a unix-domain socket (as opposed to TCP).
    public static func isUnixSocket(_ fd: Int32) -> Bool {
        var domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_UNIX
    }

    /// Removes a socket file left behind by an earlier run; refuses to touch
    /// anything that is not a socket.
    public static func removeStaleSocket(at path: String) throws(TransportError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & 0o170_000 == 0o140_000 else {  // S_ISSOCK
            throw TransportError("\(path) exists and is not a socket; remove it or listen elsewhere")
        }
        guard Glibc.unlink(path) == 0 else { throw TransportError("cannot remove stale socket \(path)", errno: errno) }
    }

    public static func chmod(_ path: String, mode: UInt32) throws(TransportError) {
        guard Glibc.chmod(path, mode_t(mode)) == 0 else {
            throw TransportError("cannot set mode \(String(mode, radix: 8)) on \(path)", errno: errno)
        }
    }

    public static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Makes `fd` non-blocking, so a worker that lost the race for a
    /// connection gets `EAGAIN` instead of sleeping in `accept`.
    public static func setNonBlocking(_ fd: Int32) throws(TransportError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw TransportError("cannot make the listening socket non-blocking", errno: errno)
        }
    }
}

/// A unix socket file this process created, removed only while it is still
/// the same file: a newer process that took over the path keeps its socket.
public struct OwnedSocketFile: Sendable {
    let path: String
    let inode: UInt

    public init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        self.path = path
        self.inode = UInt(info.st_ino)
    }

    public func remove() {
        var info = stat()
        guard lstat(path, &info) == 0, UInt(info.st_ino) == inode else { return }
        SocketCalls.unlink(path)
    }
}

/// A flag that wakes every waiting worker at once: an `eventfd` that is
/// written once and never read, so it stays readable.
public final class StopSignal: Sendable {
    public let descriptor: Int32
    /// Set before the eventfd is written, so a check needs no system call.
    private let raised = Atomic<Bool>(false)

    public init() throws(TransportError) {
        descriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard descriptor >= 0 else { throw TransportError("eventfd failed", errno: errno) }
    }

    deinit { SocketCalls.close(descriptor) }

    public func raise() {
        raised.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = Glibc.write(descriptor, &one, MemoryLayout<UInt64>.size)
    }

    public var isRaised: Bool { raised.load(ordering: .acquiring) }
}

/// One worker's wait for work: a new connection on the shared listener, the
/// next request on a kept connection, or the stop signal.
///
/// The listener is registered with `EPOLLEXCLUSIVE`, so a new connection
/// wakes one idle worker rather than all of them.
public final class ConnectionWaiter {
    public enum Event { case ready, stop }

    private let epoll: Int32
    private let stop: StopSignal
    private var events = [epoll_event](repeating: epoll_event(), count: 2)

    public init(listener: Int32, stop: StopSignal) throws(TransportError) {
        self.stop = stop
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw TransportError("epoll_create1 failed", errno: errno) }
        var listenEvent = epoll_event()
        listenEvent.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
        listenEvent.data.fd = listener
        var stopEvent = epoll_event()
        stopEvent.events = EPOLLIN.rawValue
        stopEvent.data.fd = stop.descriptor
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &listenEvent) == 0,
              epoll_ctl(epoll, EPOLL_CTL_ADD, stop.descriptor, &stopEvent) == 0
        else {
            let code = errno
            SocketCalls.close(epoll)
            throw TransportError("epoll_ctl failed", errno: code)
        }
    }

    deinit { SocketCalls.close(epoll) }

    /// What a worker does next. Right after serving a connection it tries to
    /// accept again at once: under load the next one is usually queued
    /// already, and this saves an `epoll_wait` per request. After an accept
    /// that found nothing it waits.
    public func next(afterAccepting accepted: Bool) -> Event {
        if accepted { return stop.isRaised ? .stop : .ready }
        return waitForConnection()
    }

    /// Waits for a new connection or the stop signal; stop wins a tie.
    public func waitForConnection() -> Event {
        while true {
            let count = epoll_wait(epoll, &events, 2, -1)
            if count < 0 {
                if errno == EINTR { continue }
                return .stop
            }
            if events.prefix(Int(count)).contains(where: { $0.data.fd == stop.descriptor }) { return .stop }
            if count > 0 { return .ready }
        }
    }

    /// Waits for the next request on a connection the web server keeps open.
    public func waitForRequest(on connection: Int32) -> Event {
        var entries = [
            pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let count = poll(&entries, 2, -1)
            if count < 0 {
                if errno == EINTR { continue }
                return .stop
            }
            if entries[1].revents != 0 { return .stop }
            if entries[0].revents != 0 { return .ready }
        }
    }
}

@available(*, unavailable)
extension ConnectionWaiter: Sendable {}
