// Listening sockets and accepted connections for transports that do their
// own socket I/O (SCGI). POSIX calls on descriptors, through GimletSystem's door.
import CLinuxEvents
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
    /// `fd`'s address when it is a TCP listener other hosts can reach
    /// (bound to an address that is not loopback, `0.0.0.0` included);
    /// `nil` for a loopback or unix-socket listener.
    package static func reachableAddress(_ fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        let family = Int32(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let address = PeerAddress(storage)
        guard !address.isLoopback else { return nil }
        let port = withUnsafeBytes(of: &storage) { raw in
            UInt16(bigEndian: family == AF_INET ? raw.load(as: sockaddr_in.self).sin_port : raw.load(as: sockaddr_in6.self).sin6_port)
        }
        return family == AF_INET ? "\(address.text):\(port)" : "[\(address.text)]:\(port)"
    }

    /// Refuses a TCP listener that other hosts can reach when no allow-list
    /// says which web servers may connect: whoever reaches such a port can
    /// send any request, with any `HTTPS`, `REMOTE_ADDR` or `HTTP_HOST`.
    ///
    /// - Throws: ``TransportError`` naming the address and the fixes.
    package static func requireAllowList(for fd: Int32, allowed: ClientAllowList?) throws(TransportError) {
        guard allowed == nil, let reachable = reachableAddress(fd) else { return }
        throw TransportError("the socket listens on \(reachable), which other hosts can reach, and anyone who connects can send any request (any HTTPS, REMOTE_ADDR or Host): name the web servers allowed to connect (--allowed-clients or GIMLET_ALLOWED_CLIENTS, e.g. 10.0.0.5,10.0.1.0/24; libfcgi's FCGI_WEB_SERVER_ADDRS is read too), or listen on 127.0.0.1 or a unix socket (spawn-fcgi: -a 127.0.0.1)")
    }

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
/// closed when the value goes away (unless ``release()`` handed it on).
/// Owned by the one worker that accepted it.
package final class Connection {
    /// What an accept got.
    package enum AcceptResult {
        case accepted(Connection)
        /// A peer that is not on the allow-list; its connection closes when
        /// the caller lets go of it (after logging, so a peer that sees the
        /// close knows the refusal was counted).
        case refused(Connection, peer: String)
        /// Another worker took it first.
        case noConnection
        /// The process (or the system) has no descriptor left (`EMFILE`,
        /// `ENFILE`): the open-file limit caps the connections.
        case outOfDescriptors
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
    /// Whether this value still closes `fd` when it goes away.
    private var owned = true

    /// The socket, for a watch that only peeks at it (see `ConnectionWatch`).
    package var descriptor: Int32 { fd }

    /// Takes ownership of the connected socket `fd` (a kept connection back from the epoll set).
    package init(adopting fd: Int32) { self.fd = fd }

    deinit { if owned { SystemCall.close(fd) } }

    /// Hands the socket on (to libfcgi's request slot, to the epoll set): this value no longer closes it.
    package func release() -> Int32 {
        owned = false
        return fd
    }

    /// Accepts the next connection on a non-blocking listener. A TCP peer
    /// not on `allowed` (when given) is refused and its connection closed;
    /// a unix-socket peer is not checked (the file's mode says who may
    /// connect). With `timeoutMilliseconds`, each read and write may stall
    /// that long.
    package static func accept(from listener: Int32, timeoutMilliseconds: Int?, allowed: ClientAllowList?) -> AcceptResult {
        var peer = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let accepted: Int32?
        do throws(SystemCallError) {
            accepted = try withUnsafeMutablePointer(to: &peer) { (storage) throws(SystemCallError) in
                try storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemCallError) in
                    // Closed on exec from the start: no fcntl after it.
                    try SystemCall.unlessWouldBlock("accept4") { accept4(listener, address, &length, Int32(SOCK_CLOEXEC.rawValue)) }
                }
            }
        } catch where error.errno == ECONNABORTED {
            return .noConnection
        } catch where error.errno == EMFILE || error.errno == ENFILE {
            return .outOfDescriptors
        } catch {
            return .failed(errno: error.errno)
        }
        guard let fd = accepted else { return .noConnection }
        let connection = Connection(adopting: fd)
        if Int32(peer.ss_family) != AF_UNIX {
            let address = PeerAddress(peer)
            if let allowed, !address.isAllowed(by: allowed) { return .refused(connection, peer: address.text) }
            // Answers are written whole: no delay waiting for an acknowledgement.
            try? SystemCall.setSocketOption(fd, level: Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1), name: "TCP_NODELAY")
        }
        if let timeoutMilliseconds {
            let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
            do throws(SystemCallError) {
                try SystemCall.setSocketOption(fd, level: SOL_SOCKET, SO_RCVTIMEO, timeout, name: "SO_RCVTIMEO")
                try SystemCall.setSocketOption(fd, level: SOL_SOCKET, SO_SNDTIMEO, timeout, name: "SO_SNDTIMEO")
            } catch {
                // Without its timeouts a stalled client could hold the thread for ever: refuse it.
                return .failed(errno: error.errno)
            }
        }
        return .accepted(connection)
    }

    /// Whether bytes (or the peer's close) are waiting to be read now.
    package var hasInput: Bool {
        var watched = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return (try? SystemCall.retrying("poll") { poll(&watched, 1, 0) }) == 1
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

/// A TCP peer's address, as the allow-list checks it and the log shows it.
struct PeerAddress {
    /// The IPv4 address in host byte order (an IPv4-mapped IPv6 one too); `nil` for other IPv6 peers.
    let ipv4: UInt32?
    let text: String

    init(_ storage: sockaddr_storage) {
        var storage = storage
        if Int32(storage.ss_family) == AF_INET {
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            let value = UInt32(bigEndian: address.sin_addr.s_addr)
            ipv4 = value
            text = ClientAllowList.text(value)
            return
        }
        if Int32(storage.ss_family) == AF_INET6 {
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                let value = bytes[12...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                ipv4 = value
                text = ClientAllowList.text(value)
                return
            }
            ipv4 = nil
            text = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
            return
        }
        ipv4 = nil
        text = "family \(storage.ss_family)"
    }

    /// Whether `list` allows this peer: IPv6 peers only as IPv4-mapped addresses.
    func isAllowed(by list: ClientAllowList) -> Bool { ipv4.map(list.allows(ipv4:)) ?? false }

    /// Whether this is a loopback address (127.0.0.0/8, `::1`).
    var isLoopback: Bool { ipv4.map(ClientAllowList.isLoopback) ?? (text == "0:0:0:0:0:0:0:1") }
}
