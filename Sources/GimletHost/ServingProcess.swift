import GimletFastCGI
import GimletHTTP
import GimletSCGI
@_spi(GimletInlined) import GimletSystem
import GimletTransport
import Logging

/// What a process that serves requests is made of, wired from its
/// configuration and the app's responder: the transport's server on its
/// socket, and, when any of the operator's tools is on, the scoreboard (the
/// supervisor's, or this process's own), the request monitor, the
/// watchdog, the access log and the status paths in front of the app.
///
/// Building it opens the socket and the access log and nothing else: no
/// signal is taken, no thread is started, no request accepted. ``Host``
/// then takes the signals and runs ``server``; a test can build one and
/// ask ``served`` as nginx would, without a process of its own.
struct ServingProcess {
    /// The server of the configured transport, not yet running.
    let server: any TransportServer
    /// What the server answers with: the app's responder, behind the
    /// status paths when the operator's tools are on.
    let served: any Responder
    let monitor: RequestMonitor?
    let watchdog: Watchdog?
    /// Open until ``close()``: its last lines are written after the last request.
    let accessLog: AccessLog?

    /// - Parameters:
    ///   - supervised: the process is a worker of a supervisor, whose
    ///     scoreboard it writes to (`environment` says where).
    /// - Throws: ``HostConfigurationError`` or the transport's error, before
    ///   anything is served.
    init(configuration: HostConfiguration, responder: any Responder, environment: [String: String], supervised: Bool,
         logger: Logger) throws {
        let operations = configuration.operations
        let accessLog = try operations.openAccessLog(threads: configuration.threads)
        var served: any Responder = responder
        var monitor: RequestMonitor?
        var watchdog: Watchdog?
        let listener = ListenerHandle()
        if operations.isOn {
            let (scoreboard, slot) = try Self.scoreboard(environment: environment, supervised: supervised,
                                                          threads: configuration.threads)
            // The app's swift-metrics (if it bootstrapped ScoreboardMetrics) record here from now on.
            ScoreboardMetrics.shared.attach(scoreboard.series, slot: slot, logger: logger)
            monitor = RequestMonitor(scoreboard: scoreboard, slot: slot, settings: operations, logger: logger,
                                     accessLog: accessLog)
            watchdog = Watchdog(scoreboard: scoreboard, slot: slot, settings: operations, supervised: supervised,
                                logger: logger)
            served = StatusResponder(app: responder, scoreboard: scoreboard, slot: slot, settings: operations,
                                     listener: listener)
        }
        switch configuration.transport {
        case .scgi:
            let scgi = try SCGIServer(configuration: configuration.scgiConfiguration, responder: served, logger: logger,
                                      observer: monitor)
            listener.set(scgi.listenDescriptor)
            server = scgi
        case .fastCGI:
            let fastCGI = try FastCGIServer(configuration: configuration.fastCGI, responder: served, logger: logger,
                                            observer: monitor)
            listener.set(fastCGI.listenDescriptor)
            server = fastCGI
        }
        self.served = served
        self.monitor = monitor
        self.watchdog = watchdog
        self.accessLog = accessLog
    }

    /// Writes the access log's last lines and closes it.
    func close() { accessLog?.close() }

    /// The scoreboard this process writes to, and its slot there: the
    /// supervisor's (fd 4, slot from the environment) or a new one of its own.
    private static func scoreboard(environment: [String: String], supervised: Bool,
                                   threads: Int) throws -> (Scoreboard, Int) {
        if supervised, environment["GIMLET_SCOREBOARD_FD"] == String(ProcessCalls.scoreboardDescriptor),
           let slot = environment[ProcessCalls.slotVariable].flatMap(Int.init) {
            let scoreboard = try Scoreboard(inherited: ProcessCalls.scoreboardDescriptor)
            guard slot >= 0, slot < scoreboard.processCapacity, threads <= scoreboard.threadCapacity else {
                throw HostConfigurationError("the supervisor's scoreboard has no slot \(slot) for \(threads) threads")
            }
            return (scoreboard, slot)
        }
        let scoreboard = try Scoreboard(processes: 1, threads: threads)
        scoreboard.claim(0)
        scoreboard.assign(0, pid: SystemCall.processID)
        return (scoreboard, 0)
    }
}
