import GimletSystem
import GimletHTTP
import GimletTransport
import Logging

/// Serves a `Responder` over FastCGI with a fixed set of worker threads.
///
/// Each worker owns a libfcgi request slot and handles one request at a time,
/// start to finish, on its own thread. Between requests, a connection the
/// web server keeps open (`fastcgi_keep_conn on`) waits in a
/// connection set (GimletTransport's `ConnectionSet`) with the listener, not on a thread:
/// any idle worker serves the next request that arrives on any of them. ``stop()`` stops accepting at once;
/// requests already accepted finish, then ``run()`` returns.
///
/// ```swift
/// let server = try FastCGIServer(
///     configuration: FastCGIConfiguration(listen: .unix(path: "/run/app.sock")),
///     responder: router, logger: logger)
/// server.run()   // until server.stop() is called from another thread
/// ```
public final class FastCGIServer: TransportServer {
    /// The configuration it was created with.
    public let configuration: FastCGIConfiguration
    private let responder: any Responder
    private let logger: Logger
    private let observer: (any ExchangeObserver)?
    private let listener: Listener
    private let connections: ConnectionSet
    private let gate: ConnectionGate
    /// Where streaming responses run, their connections off the workers.
    private let pump: StreamPump
    /// What libfcgi's request slots are given as their listener: it never
    /// listens, so libfcgi accepts nothing by itself.
    private let neverListening: Int32

    /// Opens the listening socket (or checks the inherited one).
    ///
    /// - Throws: `TransportError` if the address cannot be listened on, or if
    ///   `ListenAddress.inherited` is asked for and fd 0 is not a listening socket.
    public convenience init(configuration: FastCGIConfiguration, responder: some Responder, logger: Logger) throws {
        try self.init(configuration: configuration, responder: responder, logger: logger, observer: nil)
    }

    /// The same, with `observer` told of every request (the host's status, logs and timeouts).
    package init(configuration: FastCGIConfiguration, responder: some Responder, logger: Logger,
                 observer: (any ExchangeObserver)?) throws {
        self.observer = observer
        guard configuration.threads >= 1 else { throw TransportError("threads must be at least 1") }
        if let problem = configuration.bodyLimits.problem() { throw TransportError(problem) }
        try FastCGILibrary.initialize()
        // A client that goes away must cost a failed write, not the process.
        ProcessSignals.ignoreBrokenPipes()
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        if configuration.listen == .inherited, !SocketCalls.isListeningSocket(0) {
            throw TransportError("no FastCGI socket was given and fd 0 is not a listening socket; pass --fastcgi unix:/path/app.sock (or host:port), or start the app under spawn-fcgi")
        }
        // Our own bind, not FCGX_OpenSocket: libfcgi prints "bind/listen" and
        // exits the process on failure, without saying which path or port.
        listener = try Listener(listening: configuration.listen, backlog: configuration.backlog,
                                socketMode: configuration.socketMode, allowed: configuration.allowedClients)
        connections = try ConnectionSet(listener: listener.descriptor, stop: listener.stopSignal)
        gate = ConnectionGate(allowed: configuration.allowedClients, readTimeout: configuration.readTimeout,
                              workers: configuration.threads, logger: logger, protocolName: "FastCGI")
        neverListening = try SocketCalls.neverListening()
        pump = StreamPump(logger: logger)
    }

    deinit { SocketCalls.close(neverListening) }

    /// Runs the workers until ``stop()``; returns when every accepted request has finished.
    public func run() {
        logger.info("serving FastCGI", metadata: [
            "listen": "\(configuration.listen)", "threads": "\(configuration.threads)",
            "max_body": "\(configuration.bodyLimits.maxBytes)", "body_buffer": "\(configuration.bodyLimits.memoryBytes)",
            "body_temp_dir": "\(configuration.bodyLimits.temporaryDirectory)",
        ])
        gate.start()
        listener.runWorkers(count: configuration.threads, name: "gimlet-fastcgi") { [self] in self.work(worker: $0) }
        pump.shutdown()
        gate.finish()
        connections.closeParked()
        logger.info("stopped: every accepted request has finished")
    }

    /// The listening socket (for the host's status page: its accept queue).
    package var listenDescriptor: Int32 { listener.descriptor }

    /// Stops accepting requests; in-flight ones finish. Safe from any thread
    /// (the host's signal thread, another worker, a test). A unix
    /// socket this server created is removed at once, so the web server fails
    /// fast instead of queueing connections nobody will accept.
    public func stop() { listener.stop() }

    /// Whether ``stop()`` was called.
    public var isStopping: Bool { listener.isStopping }

    private func work(worker: Int) {
        let slot: FastCGIRequest
        do {
            slot = try FastCGIRequest(listenDescriptor: listener.descriptor, neverListening: neverListening)
            slot.pump = pump
        } catch {
            logger.critical("worker \(worker) could not start: \(error)")
            stop()
            return
        }
        var acceptAtOnce = false
        while true {
            guard let connection = gate.nextConnection(acceptFirst: acceptAtOnce, listener: listener, waiting: connections,
                                                       timeoutMilliseconds: nil)
            else { return }
            let fd = connection.release()
            acceptAtOnce = false
            slot.attach(fd)
            slot.reading = (gate, gate.startReading(worker: worker, descriptor: fd))
            switch slot.accept() {
            case .accepted:
                handle(slot, worker: worker)
                slot.endReading()
                slot.finish()
                if let kept = slot.takeKeptConnection() { connections.park(kept) } else { acceptAtOnce = true }
            case .noConnection:
                slot.endReading()
                acceptAtOnce = true
            case .failed(let code):
                slot.endReading()
                logger.warning("FastCGI request failed before its head was read",
                               metadata: ["error": "\(systemErrorDescription(code))"])
            }
        }
    }

    private func handle(_ slot: FastCGIRequest, worker: Int) {
        let environ = slot.environ()
        var observed = observer.map { ObservedExchange(observer: $0, worker: worker, environ: environ) }
        CGIExchange.serve(environ: environ, channel: slot, limits: configuration.bodyLimits,
                          responder: responder, logger: logger, observed: &observed)
    }
}
