// Linux calls on descriptors that are not plain I/O: socket files, epoll,
// eventfd. Each goes through GimletSystem's door.
import CLinuxEvents
@_spi(GimletInlined) import GimletSystem
import Glibc
import Synchronization

/// The socket calls the transports and the host share.
package enum SocketCalls {
    /// Whether `fd` is a listening socket (spawn-fcgi leaves one on fd 0).
    package static func isListeningSocket(_ fd: Int32) -> Bool {
        (SystemCall.socketOption(fd, level: SOL_SOCKET, SO_ACCEPTCONN) ?? 0) != 0
    }

    /// Whether `fd` is a unix-domain socket (as opposed to TCP).
    package static func isUnixSocket(_ fd: Int32) -> Bool {
        SystemCall.socketOption(fd, level: SOL_SOCKET, SO_DOMAIN) == AF_UNIX
    }

    /// Removes a socket file left behind by an earlier run; refuses to touch
    /// anything that is not a socket.
    package static func removeStaleSocket(at path: String) throws(TransportError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & 0o170_000 == 0o140_000 else {  // S_ISSOCK
            throw TransportError("\(path) exists and is not a socket; remove it or listen elsewhere")
        }
        do {
            _ = try SystemCall.once("unlink") { Glibc.unlink(path) }
        } catch {
            throw TransportError("cannot remove stale socket \(path)", error)
        }
    }

    package static func chmod(_ path: String, mode: UInt32) throws(TransportError) {
        do {
            _ = try SystemCall.once("chmod") { Glibc.chmod(path, mode_t(mode)) }
        } catch {
            throw TransportError("cannot set mode \(String(mode, radix: 8)) on \(path)", error)
        }
    }

    package static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    /// Connections waiting in the accept queue of the listening socket `fd`:
    /// the kernel tells it for TCP (`TCP_INFO`), not for unix sockets (`nil`).
    package static func acceptQueueLength(_ fd: Int32) -> Int? {
        guard !isUnixSocket(fd) else { return nil }
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return nil }
        // For a listening socket, tcpi_unacked is the accept queue's length.
        return Int(info.tcpi_unacked)
    }

    package static func close(_ fd: Int32) { SystemCall.close(fd) }

    /// A stream socket that never listens: `accept` on it fails at once.
    /// What a libfcgi request slot gets as its listener, so that libfcgi
    /// never accepts a connection by itself: every connection comes from
    /// the transport's own accept, past its allow-list and read deadline.
    package static func neverListening() throws(TransportError) -> Int32 {
        do {
            return try SystemCall.once("socket") {
                socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            }
        } catch {
            throw TransportError("cannot make a socket", error)
        }
    }

    /// Makes `fd` non-blocking, so a worker that lost the race for a
    /// connection gets `EAGAIN` instead of sleeping in `accept`.
    package static func setNonBlocking(_ fd: Int32) throws(TransportError) {
        do {
            try SystemCall.addFlag(O_NONBLOCK, to: fd, name: "O_NONBLOCK")
        } catch {
            throw TransportError("cannot make the listening socket non-blocking", error)
        }
    }
}

/// A unix socket file this process created, removed only while it is still
/// the same file: a newer process that took over the path keeps its socket.
package struct OwnedSocketFile: Sendable {
    let path: String
    let inode: UInt

    package init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        self.path = path
        self.inode = UInt(info.st_ino)
    }

    package func remove() {
        var info = stat()
        guard lstat(path, &info) == 0, UInt(info.st_ino) == inode else { return }
        SocketCalls.unlink(path)
    }
}

/// A flag that wakes every waiting worker at once: an `eventfd` that is
/// written once and never read, so it stays readable.
package final class StopSignal: Sendable {
    package let descriptor: Int32
    /// Set before the eventfd is written, so a check needs no system call.
    private let raised = Atomic<Bool>(false)

    package init() throws(TransportError) {
        do {
            descriptor = try SystemCall.once("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
        } catch {
            throw TransportError("cannot make the stop signal", error)
        }
    }

    deinit { SocketCalls.close(descriptor) }

    package func raise() {
        raised.store(true, ordering: .releasing)
        // Cannot fail but by overflowing the counter, which one write per stop never reaches.
        _ = withUnsafeBytes(of: UInt64(1)) { bytes in try? SystemCall.writeAll(descriptor, bytes, socket: false) }
    }

    package var isRaised: Bool { raised.load(ordering: .acquiring) }
}

/// What the worker threads of one server wait on together: the listening
/// socket, the connections the web server keeps open between requests
/// (FastCGI's `fastcgi_keep_conn`), and the stop signal. One epoll set,
/// shared by every worker thread.
///
/// A kept connection waits here, not on a thread: any idle worker serves
/// whichever connection has a request, so idle kept connections never hold
/// a thread while new connections queue. The listener and each connection
/// are registered one-shot, so one event wakes one worker; the listener is
/// re-armed as soon as a worker has taken its event, a connection when it
/// is parked again after its request. The stop signal stays readable once
/// raised, so it reaches every worker.
///
/// ```swift
/// switch connections.next() {
/// case .stop: return
/// case .listener: accept…           // at most one connection
/// case .connection(let fd): serve the next request on fd, then park(fd) if kept
/// }
/// ```
package final class ConnectionSet: Sendable {
    /// What a worker is to do next.
    package enum Event: Equatable, Sendable {
        /// Accept a connection (another worker may have taken it: `EAGAIN`).
        case listener
        /// Serve the next request on this kept connection, which is now the caller's.
        case connection(Int32)
        case stop
    }

    private let epoll: Int32
    private let listener: Int32
    private let stop: StopSignal
    // protected by: the mutex. The connections waiting in the set, so that
    // those still idle at the end are closed; `fresh` are those that have
    // not sent a request yet, which are served, not closed, at a stop.
    private let parked = Mutex<(all: Set<Int32>, fresh: Set<Int32>)>(([], []))

    /// A set watching `listener` and `stop`.
    package init(listener: Int32, stop: StopSignal) throws(TransportError) {
        self.listener = listener
        self.stop = stop
        do {
            epoll = try SystemCall.once("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        } catch {
            throw TransportError("cannot make the workers' epoll set", error)
        }
        do {
            try control(EPOLL_CTL_ADD, listener, oneShot: true)
            try control(EPOLL_CTL_ADD, stop.descriptor, oneShot: false)
        } catch {
            // Every property is set, so deinit runs and closes the set: closing
            // it here too would close whatever another thread opened under that number.
            throw TransportError("cannot watch the listening socket", error)
        }
    }

    deinit {
        closeParked()
        SocketCalls.close(epoll)
    }

    /// Waits for work; stop wins over anything else.
    package func next() -> Event {
        var event = epoll_event()
        while true {
            // Only a broken set fails (EBADF, EINVAL): nothing to wait on, so stop.
            guard let count = try? SystemCall.retrying("epoll_wait", { epoll_wait(epoll, &event, 1, -1) }) else {
                return .stop
            }
            guard count == 1 else { continue }
            let fd = event.data.fd
            if fd == stop.descriptor || stop.isRaised {
                // A connection accepted but not yet served was promised an
                // answer: serve it (its read deadline bounds the wait) before stopping.
                let fresh = parked.withLock { sets -> Int32? in
                    guard let fd = sets.fresh.popFirst() else { return nil }
                    sets.all.remove(fd)
                    return fd
                }
                return fresh.map { .connection($0) } ?? .stop
            }
            if fd == listener {
                // Re-armed at once: the next connection may wake another worker.
                try? control(EPOLL_CTL_MOD, listener, oneShot: true)
                return .listener
            }
            let mine = parked.withLock { sets in
                sets.fresh.remove(fd)
                return sets.all.remove(fd) != nil
            }
            if mine { return .connection(fd) }
        }
    }

    /// Hands a connection back: it waits here, watched, until its next
    /// request arrives (or the web server closes it, which wakes a worker
    /// too, to close it). `fresh`: a new connection whose first request has
    /// not arrived yet. The caller must not touch `fd` after this.
    package func park(_ fd: Int32, fresh: Bool = false) {
        parked.withLock { sets in
            sets.all.insert(fd)
            if fresh { sets.fresh.insert(fd) }
        }
        do {
            // A descriptor number seen before is still registered (one-shot
            // leaves it disarmed); a new one is added. Closing removes it.
            do { try control(EPOLL_CTL_MOD, fd, oneShot: true) } catch where error.errno == ENOENT {
                try control(EPOLL_CTL_ADD, fd, oneShot: true)
            }
        } catch {
            parked.withLock { sets in
                sets.all.remove(fd)
                sets.fresh.remove(fd)
            }
            SocketCalls.close(fd)
        }
    }

    /// Closes the connections still waiting (the server is stopping and
    /// every worker has returned): the web server sees them close and opens
    /// new ones to whoever listens next.
    package func closeParked() {
        let idle = parked.withLock { sets -> Set<Int32> in
            defer { sets = ([], []) }
            return sets.all
        }
        for fd in idle { SocketCalls.close(fd) }
    }

    private func control(_ operation: Int32, _ fd: Int32, oneShot: Bool) throws(SystemCallError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (oneShot ? EPOLLONESHOT.rawValue : 0)
        event.data.fd = fd
        _ = try SystemCall.once("epoll_ctl") { epoll_ctl(epoll, operation, fd, &event) }
    }
}
