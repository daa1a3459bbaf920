import GimletHTTP
@_spi(GimletInlined) import GimletSystem
import Logging
import Synchronization

/// What stands between a transport's listener and its workers: the
/// allow-list of web servers, refusals in the log (rate-limited, so a
/// flood of connections cannot flood it), and the per-request read
/// deadline.
///
/// ```swift
/// let gate = ConnectionGate(allowed: configuration.allowedClients, readTimeout: .seconds(30),
///                           workers: 8, logger: logger, protocolName: "FastCGI")
/// gate.start()
/// if let connection = gate.accept(from: listener.descriptor, timeoutMilliseconds: nil) { … }
/// ```
package final class ConnectionGate: Sendable {
    /// The web servers allowed to connect over TCP; `nil` lets every peer in
    /// (a loopback or unix listener, where that is safe).
    package let allowed: ClientAllowList?
    package let deadlines: ReadDeadlines
    private let logger: Logger
    private let protocolName: String

    package init(allowed: ClientAllowList?, readTimeout: Duration, workers: Int, logger: Logger, protocolName: String) {
        self.allowed = allowed
        deadlines = ReadDeadlines(workers: workers, limit: readTimeout)
        self.logger = logger
        self.protocolName = protocolName
    }

    /// Starts enforcing the read deadlines.
    package func start() { deadlines.start() }

    /// Stops enforcing them, after the last request.
    package func finish() { deadlines.finish() }

    // protected by: atomic exchange; set once per process.
    private static let saidOutOfDescriptors = Atomic<Bool>(false)

    /// Accepts one connection, if one is waiting and its peer is allowed; a
    /// refused one is closed and logged. `nil` when there is none to serve.
    package func accept(from listener: Int32, timeoutMilliseconds: Int?) -> Connection? {
        switch Connection.accept(from: listener, timeoutMilliseconds: timeoutMilliseconds, allowed: allowed) {
        case .accepted(let connection):
            return connection
        case .refused(let connection, let peer):
            SecurityEvent.refusedConnection.log("refused a \(protocolName) connection from a peer not in the allowed clients",
                                                client: peer, logger: logger)
            withExtendedLifetime(connection) {}  // closed now, once counted and logged
            return nil
        case .noConnection:
            return nil
        case .outOfDescriptors:
            // The limit, not the load: every open stream holds a descriptor.
            // Said once; the listener stays readable, so wait a little rather than spin.
            if !Self.saidOutOfDescriptors.exchange(true, ordering: .relaxed) {
                logger.error("out of file descriptors: the open-file limit (\(SystemCall.openFileLimit)), not the load, caps connections and open streams; raise LimitNOFILE (systemd) or ulimit -n. Said once per process.")
            }
            SystemCall.sleep(microseconds: 10_000)
            return nil
        case .failed(let code):
            logger.warning("\(protocolName) accept failed", metadata: ["error": "\(systemErrorDescription(code))"])
            return nil
        }
    }

    /// The connection a worker is to read its next request from; `nil` to
    /// stop. With `acceptFirst` (right after a request, when the next
    /// connection is usually queued already) it tries the listener before
    /// waiting, which saves an `epoll_wait` per request; otherwise it waits
    /// in `waiting` for the listener or a parked connection.
    package func nextConnection(acceptFirst: Bool, listener: Listener, waiting: ConnectionSet,
                                timeoutMilliseconds: Int?) -> Connection? {
        var acceptFirst = acceptFirst
        while true {
            if acceptFirst, !listener.isStopping,
               let connection = acceptReady(from: listener.descriptor, timeoutMilliseconds: timeoutMilliseconds, parkingIn: waiting) {
                return connection
            }
            acceptFirst = false
            switch waiting.next() {
            case .stop: return nil
            case .listener:
                if let connection = acceptReady(from: listener.descriptor, timeoutMilliseconds: timeoutMilliseconds,
                                                parkingIn: waiting) {
                    return connection
                }
            case .connection(let fd): return Connection(adopting: fd)
            }
        }
    }

    /// A new connection from an allowed peer whose request is already
    /// arriving; one whose peer has sent nothing yet waits in `waiting`
    /// instead (fresh: it is served, not dropped, at a stop), so an idle
    /// connection holds no worker. `nil` when there is none to read now.
    package func acceptReady(from listener: Int32, timeoutMilliseconds: Int?, parkingIn waiting: ConnectionSet) -> Connection? {
        while let connection = accept(from: listener, timeoutMilliseconds: timeoutMilliseconds) {
            if connection.hasInput { return connection }
            waiting.park(connection.release(), fresh: true)
        }
        return nil
    }

    /// Arms `worker`'s read deadline for the request it starts reading on `descriptor`.
    package func startReading(worker: Int, descriptor: Int32) -> ReadDeadlines.Lease {
        deadlines.arm(worker: worker, descriptor: descriptor)
    }

    /// Ends a lease and logs when its deadline had passed.
    package func endReading(_ lease: ReadDeadlines.Lease) {
        guard let peer = lease.end() else { return }
        SecurityEvent.readTimeout.log("a request was not read within the read timeout; its connection was closed (a stalled or slow peer)",
                                      client: peer, logger: logger, metadata: ["read_timeout": "\(deadlines.limit)"])
    }
}
