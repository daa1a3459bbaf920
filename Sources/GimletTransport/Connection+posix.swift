// Listening sockets and accepted connections for transports that do their
// own socket I/O (SCGI). Plain POSIX calls on descriptors.
import Glibc

public enum ListeningSocket {
    /// Opens a listening socket for `address` (unix or IPv4 TCP), non-blocking.
    ///
    /// A stale unix socket file left by an earlier run is replaced; anything
    /// else at that path is refused.
    public static func open(_ address: ListenAddress, backlog: Int, socketMode: UInt32?) throws(TransportError) -> Int32 {
        let fd: Int32
        switch address {
        case .inherited:
            guard SocketCalls.isListeningSocket(0) else {
                throw TransportError("no socket was given and fd 0 is not a listening socket; pass an address, or start the app under a spawner that passes one")
            }
            fd = 0
        case .unix(let path):
            try SocketCalls.removeStaleSocket(at: path)
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw TransportError("socket() failed", errno: errno) }
            var socketAddress = sockaddr_un()
            socketAddress.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else {
                Glibc.close(fd)
                throw TransportError("unix socket path \(path) is too long")
            }
            withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            try bind(fd, &socketAddress, address, hint: "is the directory missing?")
            if let socketMode { try SocketCalls.chmod(path, mode: socketMode) }
        case .tcp(let host, let port):
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw TransportError("socket() failed", errno: errno) }
            var reuse: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = UInt16(port).bigEndian
            let name = host.isEmpty ? "0.0.0.0" : (host == "localhost" ? "127.0.0.1" : host)
            guard inet_pton(AF_INET, name, &socketAddress.sin_addr) == 1 else {
                Glibc.close(fd)
                throw TransportError("\(host) is not an IPv4 address; use one such as 127.0.0.1, or a unix socket")
            }
            try bind(fd, &socketAddress, address, hint: "is another process using it?")
        }
        if address != .inherited, listen(fd, Int32(clamping: backlog)) != 0 {
            let code = errno
            Glibc.close(fd)
            throw TransportError("cannot listen on \(address)", errno: code)
        }
        try SocketCalls.setNonBlocking(fd)
        return fd
    }
}

extension ListeningSocket {
    /// Binds `fd` to a `sockaddr_un` or `sockaddr_in`; on failure closes it and says why.
    fileprivate static func bind<SocketAddress>(
        _ fd: Int32, _ socketAddress: inout SocketAddress, _ address: ListenAddress, hint: String
    ) throws(TransportError) {
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<SocketAddress>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TransportError("cannot bind \(address) (\(hint))", errno: code)
        }
    }
}

/// An accepted connection: blocking reads and writes bounded by a timeout,
/// closed when the value goes away. Owned by the one worker that accepted it.
public final class Connection {
    public enum AcceptResult {
        case accepted(Connection)
        /// Another worker took it first.
        case noConnection
        case failed(errno: Int32)
    }

    /// What a read got.
    public enum ReadResult: Equatable {
        case bytes(Int)
        case end
        case timedOut
        case failed(errno: Int32)
    }

    private let fd: Int32

    /// The socket, for a watch that only peeks at it (see `ConnectionWatch`).
    package var descriptor: Int32 { fd }

    private init(fd: Int32) { self.fd = fd }

    deinit { Glibc.close(fd) }

    /// Accepts the next connection on a non-blocking listener, with read and write timeouts.
    public static func accept(from listener: Int32, timeoutMilliseconds: Int) -> AcceptResult {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else {
            let code = errno
            return code == EAGAIN || code == EWOULDBLOCK || code == EINTR || code == ECONNABORTED
                ? .noConnection : .failed(errno: code)
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return .accepted(Connection(fd: fd))
    }

    /// Reads what is available (at most `maximum` bytes) onto the end of `buffer`.
    public func read(into buffer: inout [UInt8], maximum: Int) -> ReadResult {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: maximum))
        while true {
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.read(fd, base + start, maximum)
            }
            if count >= 0 {
                buffer.removeSubrange((start + count)...)
                return count == 0 ? .end : .bytes(count)
            }
            let code = errno
            if code == EINTR { continue }
            buffer.removeSubrange(start...)
            return code == EAGAIN || code == EWOULDBLOCK ? .timedOut : .failed(errno: code)
        }
    }

    /// Writes all of `bytes`; `false` if the peer went away or stalled past the timeout.
    public func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += count
        }
        return true
    }
}

@available(*, unavailable)
extension Connection: Sendable {}
