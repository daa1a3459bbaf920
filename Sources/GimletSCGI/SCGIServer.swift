import GimletHTTP
import GimletSystem
import GimletTransport
import Logging

/// How the SCGI transport listens and reads requests.
public struct SCGIConfiguration: Sendable, Equatable {
    /// Where to listen; `ListenAddress.inherited` serves a socket passed on fd 0.
    public var listen: ListenAddress
    /// Worker threads, each handling one connection at a time.
    public var threads: Int
    /// The largest request body accepted; larger ones get `413`.
    public var maxBodyBytes: Int
    /// The largest SCGI header block accepted; a larger one closes the connection.
    public var maxHeaderBytes: Int
    /// How long a read or write may stall before the connection is closed.
    public var timeoutMilliseconds: Int
    /// Permission bits for a unix socket this process creates.
    public var socketMode: UInt32?
    /// The listen backlog.
    public var backlog: Int
    /// The web servers allowed to connect over TCP. Required when the
    /// listener can be reached from other hosts (an address that is not
    /// loopback, `0.0.0.0` included); the server refuses to start without it.
    public var allowedClients: ClientAllowList?
    /// How long one request may take to arrive, its header block and body
    /// together; a peer that stalls or trickles past it loses its connection.
    public var readTimeout: Duration

    /// The default thread count: two per core, so a thread blocked on a
    /// backend does not idle a core.
    public static var defaultThreads: Int { defaultWorkerThreads() }

    /// Creates a configuration; every parameter has a safe default.
    public init(listen: ListenAddress = .inherited, threads: Int = SCGIConfiguration.defaultThreads,
                maxBodyBytes: Int = 1 << 20, maxHeaderBytes: Int = 64 * 1024, timeoutMilliseconds: Int = 30_000,
                socketMode: UInt32? = nil, backlog: Int = 1024, allowedClients: ClientAllowList? = nil,
                readTimeout: Duration = .seconds(30)) {
        self.listen = listen
        self.threads = threads
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.timeoutMilliseconds = timeoutMilliseconds
        self.socketMode = socketMode
        self.backlog = backlog
        self.allowedClients = allowedClients
        self.readTimeout = readTimeout
    }
}

/// Serves a `Responder` over SCGI with a fixed set of worker threads.
///
/// Each connection carries one request: the worker reads the netstring
/// header block and the body, runs the same `Request` → middleware → router
/// pipeline as FastCGI (`CGIExchange`), writes the CGI response and closes.
/// Malformed or oversized heads, stalled clients (past the timeout) and
/// clients that go away cost a closed connection and a log line, never a worker.
///
/// ```swift
/// let server = try SCGIServer(configuration: SCGIConfiguration(listen: .tcp(host: "127.0.0.1", port: 4000)),
///                             responder: router, logger: logger)
/// server.run()
/// ```
public final class SCGIServer: TransportServer {
    /// The configuration it was created with.
    public let configuration: SCGIConfiguration
    private let responder: any Responder
    private let logger: Logger
    private let observer: (any ExchangeObserver)?
    private let listener: Listener
    private let connections: ConnectionSet
    private let gate: ConnectionGate

    /// Opens the listening socket.
    ///
    /// - Throws: `TransportError` if the address cannot be listened on.
    public convenience init(configuration: SCGIConfiguration, responder: some Responder, logger: Logger) throws {
        try self.init(configuration: configuration, responder: responder, logger: logger, observer: nil)
    }

    /// The same, with `observer` told of every request (the host's status, logs and timeouts).
    package init(configuration: SCGIConfiguration, responder: some Responder, logger: Logger,
                 observer: (any ExchangeObserver)?) throws {
        self.observer = observer
        guard configuration.threads >= 1 else { throw TransportError("threads must be at least 1") }
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        listener = try Listener(listening: configuration.listen, backlog: configuration.backlog,
                                socketMode: configuration.socketMode, allowed: configuration.allowedClients)
        connections = try ConnectionSet(listener: listener.descriptor, stop: listener.stopSignal)
        gate = ConnectionGate(allowed: configuration.allowedClients, readTimeout: configuration.readTimeout,
                              workers: configuration.threads, logger: logger, protocolName: "SCGI")
    }

    /// Runs the workers until ``stop()``; returns when every accepted request has finished.
    public func run() {
        logger.info("serving SCGI", metadata: [
            "listen": "\(configuration.listen)", "threads": "\(configuration.threads)",
            "max_body": "\(configuration.maxBodyBytes)",
        ])
        gate.start()
        listener.runWorkers(count: configuration.threads, name: "gimlet-scgi") { [self] in self.work(worker: $0) }
        gate.finish()
        connections.closeParked()
        logger.info("stopped: every accepted request has finished")
    }

    /// The listening socket (for the host's status page: its accept queue).
    package var listenDescriptor: Int32 { listener.descriptor }

    /// Stops accepting; in-flight requests finish. Safe from any thread.
    public func stop() { listener.stop() }

    private func work(worker: Int) {
        var acceptAtOnce = false
        while true {
            // SCGI keeps no connection between requests: what waits in the
            // set is a new one whose peer had sent nothing yet.
            guard let connection = gate.nextConnection(acceptFirst: acceptAtOnce, listener: listener, waiting: connections,
                                                       timeoutMilliseconds: configuration.timeoutMilliseconds)
            else { return }
            let lease = gate.startReading(worker: worker, descriptor: connection.descriptor)
            serve(connection, worker: worker, lease: lease)
            gate.endReading(lease)
            acceptAtOnce = true
        }
    }

    private func serve(_ connection: Connection, worker: Int, lease: ReadDeadlines.Lease) {
        var input: [UInt8] = []
        input.reserveCapacity(4096)
        let head: SCGIRequestHead
        readHead: while true {
            switch SCGIRequestHead.parse(input, maximumHeaderBytes: configuration.maxHeaderBytes) {
            case .complete(let parsed):
                head = parsed
                break readHead
            case .invalid(let reason):
                logger.warning("closing SCGI connection: \(reason)")
                return
            case .needMore:
                guard let problem = connection.readMore(into: &input, timeoutMilliseconds: configuration.timeoutMilliseconds)
                else { continue }
                logger.warning("closing SCGI connection while reading the head: \(problem)")
                return
            }
        }
        var observed = observer.map { ObservedExchange(observer: $0, worker: worker, environ: head.environ) }
        var channel = SCGIChannel(connection: connection, received: Array(input[head.headLength...]),
                                  contentLength: head.contentLength, timeoutMilliseconds: configuration.timeoutMilliseconds,
                                  reading: (gate, lease))
        CGIExchange.serve(environ: head.environ, channel: &channel, maxBodyBytes: configuration.maxBodyBytes,
                          responder: responder, logger: logger, observed: &observed)
    }
}

/// One SCGI request's body and answer, on its own connection: the
/// ``GimletHTTP/ExchangeChannel`` ``SCGIServer`` gives ``GimletHTTP/CGIExchange``.
struct SCGIChannel: ExchangeChannel {
    let connection: Connection
    /// What arrived after the head: the start of the body.
    var received: [UInt8]
    /// The head's `CONTENT_LENGTH` (SCGI requires it).
    let contentLength: Int
    let timeoutMilliseconds: Int
    /// The request's read deadline, ended once its body is read (or drained).
    let reading: (gate: ConnectionGate, lease: ReadDeadlines.Lease)

    func readBody(expected: Int?, limit: Int) -> BodyRead {
        defer { reading.gate.endReading(reading.lease) }
        let expected = expected ?? contentLength
        guard expected <= limit else {
            drainBody()
            return .tooLarge
        }
        var body = received
        while body.count < expected {
            if let problem = connection.readMore(into: &body, timeoutMilliseconds: timeoutMilliseconds) {
                return .short(received: body.count, expected: expected, reason: problem)
            }
        }
        if body.count > expected { body.removeSubrange(expected...) }
        return .complete(body)
    }

    /// Reads what the server sends of the body (at most 64 MiB), so it sees our 413 and not a reset.
    func drainBody() {
        defer { reading.gate.endReading(reading.lease) }
        var drained = received.count
        while drained < min(contentLength, 64 << 20) {
            var scratch: [UInt8] = []
            guard connection.readMore(into: &scratch, timeoutMilliseconds: timeoutMilliseconds) == nil else { return }
            drained += scratch.count
        }
    }

    func write(_ bytes: [UInt8]) -> Bool { connection.write(bytes) }

    var connectionWatch: ConnectionWatch? { ConnectionWatch(descriptor: connection.descriptor) }
}

extension Connection {
    /// Reads more into `buffer`; `nil` when bytes came, else what stopped it.
    fileprivate func readMore(into buffer: inout [UInt8], timeoutMilliseconds: Int) -> String? {
        switch read(into: &buffer, maximum: 64 * 1024) {
        case .bytes: return nil
        case .end: return "the peer closed the connection"
        case .timedOut: return "no data for \(timeoutMilliseconds) ms"
        case .failed(let code): return systemErrorDescription(code)
        }
    }
}
