import Foundation
import Synchronization

/// A TCP relay on a free loopback port to a server's loopback `port` that
/// counts round trips as the wire shows them: a round trip starts each
/// time a client sends after the server has spoken (or first), however many
/// statements or reads the bytes hold. Call ``stop()`` when done (its
/// threads keep it alive until then).
final class RoundTripRelay: Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex(State())

    private struct State {
        var roundTrips = 0
        var stopped = false
        var open: [Int32] = []
    }

    init(to target: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SetupError("socket() failed") }
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        guard bound == 0, named == 0, listen(listener, 16) == 0 else {
            close(listener)
            throw SetupError("the relay cannot listen on loopback")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }  // stopped
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = Self.loopback(port: target)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                let keep = state.withLock { state in
                    guard !state.stopped, connected == 0 else { return false }
                    state.open += [client, server]
                    return true
                }
                guard keep else {
                    close(client)
                    close(server)
                    continue
                }
                Thread.detachNewThread { [self] in relay(client: client, server: server) }
            }
        }
    }

    /// Round trips since the start or the last ``reset()``.
    var roundTrips: Int { state.withLock { $0.roundTrips } }

    func reset() { state.withLock { $0.roundTrips = 0 } }

    /// Stops accepting and ends every relayed connection.
    func stop() {
        let open = state.withLock { state in
            guard !state.stopped else { return [Int32]() }
            state.stopped = true
            return state.open
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func relay(client: Int32, server: Int32) {
        defer {
            state.withLock { $0.open.removeAll { $0 == client || $0 == server } }
            close(client)
            close(server)
        }
        var clientSpokeLast = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: server, events: Int16(POLLIN), revents: 0)]
        while poll(&fds, 2, -1) > 0 {
            for index in 0..<2 where fds[index].revents != 0 {
                let from = fds[index].fd, to = fds[1 - index].fd
                let count = read(from, &buffer, buffer.count)
                guard count > 0 else { return }
                if from == client, !clientSpokeLast { state.withLock { $0.roundTrips += 1 } }
                clientSpokeLast = from == client
                var written = 0
                while written < count {
                    let wrote = buffer[written..<count].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard wrote > 0 else { return }
                    written += wrote
                }
            }
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
