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
    /// What request bodies may be, and where large ones are kept (see
    /// `BodyLimits` of GimletHTTP): `--max-body`, `--body-buffer`, `--body-temp-dir`.
    public var bodyLimits: BodyLimits
    /// The largest request body accepted (``bodyLimits``' `maxBytes`); larger ones get `413`.
    public var maxBodyBytes: Int {
        get { bodyLimits.maxBytes }
        set { bodyLimits.maxBytes = newValue }
    }
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
    /// How long a request's header block may take to arrive, and the
    /// longest pause in its body; a peer that stalls or trickles past it
    /// loses its connection.
    public var readTimeout: Duration

    /// The default thread count: two per core, so a thread blocked on a
    /// backend does not idle a core.
    public static var defaultThreads: Int { defaultWorkerThreads() }

    /// Creates a configuration; every parameter has a safe default.
    public init(listen: ListenAddress = .inherited, threads: Int = SCGIConfiguration.defaultThreads,
                maxBodyBytes: Int = BodyLimits().maxBytes, maxHeaderBytes: Int = 64 * 1024, timeoutMilliseconds: Int = 30_000,
                socketMode: UInt32? = nil, backlog: Int = 1024, allowedClients: ClientAllowList? = nil,
                readTimeout: Duration = .seconds(30)) {
        self.listen = listen
        self.threads = threads
        self.bodyLimits = BodyLimits(maxBytes: maxBodyBytes)
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
    /// Where streaming responses run, their connections off the workers.
    private let pump: StreamPump

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
        if let problem = configuration.bodyLimits.problem() { throw TransportError(problem) }
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        listener = try Listener(listening: configuration.listen, backlog: configuration.backlog,
                                socketMode: configuration.socketMode, allowed: configuration.allowedClients)
        connections = try ConnectionSet(listener: listener.descriptor, stop: listener.stopSignal)
        gate = ConnectionGate(allowed: configuration.allowedClients, readTimeout: configuration.readTimeout,
                              workers: configuration.threads, logger: logger, protocolName: "SCGI")
        pump = StreamPump(logger: logger)
    }

    /// Runs the workers until ``stop()``; returns when every accepted request has finished.
    public func run() {
        logger.info("serving SCGI", metadata: [
            "listen": "\(configuration.listen)", "threads": "\(configuration.threads)",
            "max_body": "\(configuration.bodyLimits.maxBytes)", "body_buffer": "\(configuration.bodyLimits.memoryBytes)",
            "body_temp_dir": "\(configuration.bodyLimits.temporaryDirectory)",
        ])
        gate.start()
        listener.runWorkers(count: configuration.threads, name: "gimlet-scgi") { [self] in self.work(worker: $0) }
        pump.shutdown()
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
        let length = Self.bodyLength(head)
        let channel = SCGIChannel(connection: connection, received: Array(input[head.headLength...]),
                                  contentLength: length, timeoutMilliseconds: configuration.timeoutMilliseconds,
                                  reading: (gate, lease), pump: pump)
        CGIExchange.serve(environ: head.environ, channel: channel, limits: configuration.bodyLimits,
                          responder: responder, logger: logger, observed: &observed,
                          contentLength: length == head.contentLength ? nil : String(length))
    }

    /// The body's true length. nginx with `scgi_request_buffering off`
    /// announces in `CONTENT_LENGTH` only the bytes of the body it had read
    /// when it sent the head (its SCGI module sums what it has buffered),
    /// then sends the whole body; the client's `Content-Length`, which
    /// nginx enforces (a chunked body it buffers whatever the setting),
    /// is then the body's length. Trusting `CONTENT_LENGTH` cut such
    /// uploads short without a word.
    static func bodyLength(_ head: SCGIRequestHead) -> Int {
        guard let header = head.environ["HTTP_CONTENT_LENGTH"], !header.isEmpty, header.utf8.count <= 18,
              header.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let announced = Int(header), announced > head.contentLength
        else { return head.contentLength }
        return announced
    }
}

/// One SCGI request's body and answer, on its own connection: the
/// ``GimletHTTP/ExchangeChannel`` ``SCGIServer`` gives ``GimletHTTP/CGIExchange``.
final class SCGIChannel: ExchangeChannel {
    let connection: Connection
    /// What arrived after the head and is not handed out yet: the start of the body.
    private var received: [UInt8]
    /// Body bytes still to come (SCGI always sends `CONTENT_LENGTH`).
    private var left: Int
    let timeoutMilliseconds: Int
    /// The request's read deadline, ended once its body is read (or drained).
    let reading: (gate: ConnectionGate, lease: ReadDeadlines.Lease)

    /// The server's stream pump, which streaming responses are handed to.
    let pump: StreamPump

    init(connection: Connection, received: [UInt8], contentLength: Int, timeoutMilliseconds: Int,
         reading: (gate: ConnectionGate, lease: ReadDeadlines.Lease), pump: StreamPump) {
        self.pump = pump
        self.connection = connection
        self.received = received
        self.left = contentLength
        self.timeoutMilliseconds = timeoutMilliseconds
        self.reading = reading
    }

    func readBody(into buffer: inout [UInt8], maximum: Int) -> BodyChunkRead {
        guard left > 0 else {
            reading.gate.endReading(reading.lease)
            return .end
        }
        if received.isEmpty, let problem = connection.readMore(into: &received, timeoutMilliseconds: timeoutMilliseconds) {
            reading.gate.endReading(reading.lease)
            return .failed(problem)
        }
        let count = min(maximum, left, received.count)
        buffer.append(contentsOf: received[..<count])
        received.removeFirst(count)
        left -= count
        reading.lease.extend()
        return .bytes
    }

    /// Reads what the server still sends of the body (at most 64 MiB), so it sees our answer and not a reset.
    func drainBody() {
        defer { reading.gate.endReading(reading.lease) }
        left -= min(left, received.count)
        received = []
        var drained = 0
        while left > 0, drained < 64 << 20 {
            var scratch: [UInt8] = []
            guard connection.readMore(into: &scratch, timeoutMilliseconds: timeoutMilliseconds) == nil else { return }
            drained += scratch.count
            left -= min(left, scratch.count)
        }
    }

    func write(_ bytes: [UInt8]) -> Bool { connection.write(bytes) }

    var connectionWatch: ConnectionWatch? { ConnectionWatch(descriptor: connection.descriptor) }

    /// Writes the headers and hands the connection to the stream pump; its
    /// close ends the response.
    func startStream(head: [UInt8], stream: ResponseStream, logger: Logger) {
        guard connection.write(head) else {
            logger.debug("the web server closed the connection before a stream started")
            return
        }
        pump.start(descriptor: connection.release(), framing: PlainStreamFraming(), stream: stream)
    }
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
