// Listening sockets and accepted connections for transports that do their
// own socket I/O (SCGI). POSIX calls on descriptors, through GimletSystem's door.
@_spi(GimletInlined) import GimletSystem
import Glibc

/// Opening the socket a transport, or the supervisor, listens on.
package enum ListeningSocket {
    /// Opens a listening socket for `address` (unix or IPv4 TCP), non-blocking.
    ///
    /// A stale unix socket file left by an earlier run is replaced; anything
    /// else at that path is refused.
    package static func open(_ address: ListenAddress, backlog: Int, socketMode: UInt32?) throws(TransportError) -> Int32 {
        let fd: Int32
        func closing(_ message: String, _ cause: SystemCallError) -> TransportError {
            SystemCall.close(fd)
            return TransportError(message, cause)
        }
        switch address {
        case .inherited:
            guard SocketCalls.isListeningSocket(0) else {
                throw TransportError("no socket was given and fd 0 is not a listening socket; pass an address, or start the app under a spawner that passes one")
            }
            fd = 0
        case .unix(let path):
            try SocketCalls.removeStaleSocket(at: path)
            fd = try newSocket(AF_UNIX)
            var socketAddress = sockaddr_un()
            socketAddress.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else {
                SystemCall.close(fd)
                throw TransportError("unix socket path \(path) is too long")
            }
            withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            try bind(fd, &socketAddress, address, hint: "is the directory missing?")
            if let socketMode { try SocketCalls.chmod(path, mode: socketMode) }
        case .tcp(let host, let port):
            fd = try newSocket(AF_INET)
            do {
                try SystemCall.setSocketOption(fd, level: SOL_SOCKET, SO_REUSEADDR, Int32(1), name: "SO_REUSEADDR")
            } catch {
                throw closing("cannot listen on \(address)", error)
            }
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = UInt16(port).bigEndian
            let name = host.isEmpty ? "0.0.0.0" : (host == "localhost" ? "127.0.0.1" : host)
            guard inet_pton(AF_INET, name, &socketAddress.sin_addr) == 1 else {
                SystemCall.close(fd)
                throw TransportError("\(host) is not an IPv4 address; use one such as 127.0.0.1, or a unix socket")
            }
            try bind(fd, &socketAddress, address, hint: "is another process using it?")
        }
        if address != .inherited {
            do {
                _ = try SystemCall.once("listen") { listen(fd, Int32(clamping: backlog)) }
            } catch {
                throw closing("cannot listen on \(address)", error)
            }
        }
        try SocketCalls.setNonBlocking(fd)
        return fd
    }

    /// A new stream socket of `domain`, closed on exec.
    private static func newSocket(_ domain: Int32) throws(TransportError) -> Int32 {
        do {
            return try SystemCall.once("socket") { socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        } catch {
            throw TransportError("cannot make a socket", error)
        }
    }
}

extension ListeningSocket {
    /// Binds `fd` to a `sockaddr_un` or `sockaddr_in`; on failure closes it and says why.
    fileprivate static func bind<SocketAddress>(
        _ fd: Int32, _ socketAddress: inout SocketAddress, _ address: ListenAddress, hint: String
    ) throws(TransportError) {
        do {
            _ = try withUnsafePointer(to: &socketAddress) { (pointer) throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (socketAddress) throws(SystemCallError) in
                    try SystemCall.once("bind") { Glibc.bind(fd, socketAddress, socklen_t(MemoryLayout<SocketAddress>.size)) }
                }
            }
        } catch {
            SystemCall.close(fd)
            throw TransportError("cannot bind \(address) (\(hint))", error)
        }
    }
}

/// An accepted connection: blocking reads and writes bounded by a timeout,
/// closed when the value goes away. Owned by the one worker that accepted it.
package final class Connection {
    /// What an accept got.
    package enum AcceptResult {
        case accepted(Connection)
        /// Another worker took it first.
        case noConnection
        case failed(errno: Int32)
    }

    /// What a read got.
    package enum ReadResult: Equatable {
        case bytes(Int)
        case end
        case timedOut
        case failed(errno: Int32)
    }

    private let fd: Int32

    /// The socket, for a watch that only peeks at it (see `ConnectionWatch`).
    package var descriptor: Int32 { fd }

    private init(fd: Int32) { self.fd = fd }

    deinit { SystemCall.close(fd) }

    /// Accepts the next connection on a non-blocking listener, with read and write timeouts.
    package static func accept(from listener: Int32, timeoutMilliseconds: Int) -> AcceptResult {
        let accepted: Int32?
        do throws(SystemCallError) {
            accepted = try SystemCall.unlessWouldBlock("accept") { Glibc.accept(listener, nil, nil) }
        } catch where error.errno == ECONNABORTED {
            return .noConnection
        } catch {
            return .failed(errno: error.errno)
        }
        guard let fd = accepted else { return .noConnection }
        let connection = Connection(fd: fd)
        let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        do throws(SystemCallError) {
            try SystemCall.addFlag(FD_CLOEXEC, to: fd, descriptorFlags: true, name: "FD_CLOEXEC")
            try SystemCall.setSocketOption(fd, level: SOL_SOCKET, SO_RCVTIMEO, timeout, name: "SO_RCVTIMEO")
            try SystemCall.setSocketOption(fd, level: SOL_SOCKET, SO_SNDTIMEO, timeout, name: "SO_SNDTIMEO")
        } catch {
            // Without its timeouts a stalled client could hold the thread for ever: refuse it.
            return .failed(errno: error.errno)
        }
        return .accepted(connection)
    }

    /// Reads what is available (at most `maximum` bytes) onto the end of `buffer`.
    package func read(into buffer: inout [UInt8], maximum: Int) -> ReadResult {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: maximum))
        let outcome = buffer.withUnsafeMutableBytes { raw -> Result<Int?, SystemCallError> in
            guard let base = raw.baseAddress else { return .success(0) }
            return Result { () throws(SystemCallError) in
                try SystemCall.unlessWouldBlock("read") { Glibc.read(fd, base + start, maximum) }
            }
        }
        switch outcome {
        case .success(let count?):
            buffer.removeSubrange((start + count)...)
            return count == 0 ? .end : .bytes(count)
        case .success(nil):
            buffer.removeSubrange(start...)
            return .timedOut
        case .failure(let error):
            buffer.removeSubrange(start...)
            return .failed(errno: error.errno)
        }
    }

    /// Writes all of `bytes`; `false` if the peer went away or stalled past the timeout.
    package func write(_ bytes: [UInt8]) -> Bool {
        let outcome = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemCallError) in try SystemCall.writeAll(fd, raw, socket: true) }
        }
        if case .failure = outcome { return false }
        return true
    }
}

@available(*, unavailable)
extension Connection: Sendable {}
