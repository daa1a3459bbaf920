import GimletHTTP
import Logging
import Synchronization

/// The host's ``GimletHTTP/ExchangeObserver``: it keeps this process's
/// records of the ``Scoreboard`` (current request and counters of each
/// worker thread), gives async handlers their deadline
/// (`--request-timeout`), logs requests slower than `--slow-request` with
/// their phases, and asks for this worker to be recycled after about
/// `--max-requests`, and writes the access log.
final class RequestMonitor: ExchangeObserver {
    let scoreboard: Scoreboard
    /// This process's slot.
    let slot: Int
    let settings: OperationsSettings
    let logger: Logger
    let accessLog: AccessLog?
    /// Requests after which this worker asks to be replaced (`--max-requests`
    /// plus up to 10 % jitter, so workers started together do not all restart together).
    let recycleAfter: Int?
    // protected by: atomic increments; requests this process finished.
    private let served = Atomic<Int>(0)

    init(scoreboard: Scoreboard, slot: Int, settings: OperationsSettings, logger: Logger, accessLog: AccessLog?) {
        self.accessLog = accessLog
        self.scoreboard = scoreboard
        self.slot = slot
        self.settings = settings
        self.logger = logger
        recycleAfter = settings.maxRequests.map { $0 + Int.random(in: 0...max(0, $0 / 10)) }
    }

    func began(worker: Int, method: HTTPMethod, path: String, requestID: String) {
        guard worker < scoreboard.threadCapacity else { return }
        scoreboard.begin(slot, worker, method: method.rawValue, path: path, requestID: requestID,
                         thread: UInt64(StackCapture.currentThread()))
    }

    func prepare(_ request: Request, worker: Int, began: ContinuousClock.Instant) {
        if let timeout = settings.requestTimeout { request.deadline = began + timeout }
    }

    func finished(worker: Int, _ exchange: FinishedExchange) {
        accessLog?.record(exchange, worker: worker)
        let duration = exchange.written - exchange.began
        let slow = settings.slowRequest.map { duration >= $0 } ?? false
        if slow { logSlow(exchange, duration: duration) }
        if worker < scoreboard.threadCapacity {
            scoreboard.end(slot, worker, Scoreboard.Outcome(
                status: exchange.status, durationMicros: duration.microseconds,
                roundTrips: exchange.measures.roundTrips, failures: exchange.measures.failures,
                backendMicros: exchange.measures.time.microseconds, slow: slow))
        }
        let count = served.add(1, ordering: .relaxed).newValue
        if let recycleAfter, count == recycleAfter {
            logger.info("served \(count) requests (--max-requests); asking the supervisor for a successor")
            scoreboard.requestRecycling(slot)
        }
    }

    /// One line for a request that took longer than `--slow-request`, with where its time went.
    private func logSlow(_ exchange: FinishedExchange, duration: Duration) {
        let handler = (exchange.responded - exchange.bodyRead) - exchange.measures.time
        logger.warning("slow request", metadata: [
            "method": "\(exchange.method)", "path": "\(exchange.path)", "request_id": "\(exchange.requestID)",
            "route": "\(exchange.route ?? "-")",
            "status": "\(exchange.status)", "duration_ms": "\(duration.milliseconds)",
            "phases_ms": "body \((exchange.bodyRead - exchange.began).milliseconds), session load \(exchange.measures.load.milliseconds), handler \(handler.milliseconds), session commit \(exchange.measures.commit.milliseconds), writing \((exchange.written - exchange.responded).milliseconds)",
        ])
    }
}

/// The operator's settings of ``RequestMonitor``, ``Watchdog`` and ``StatusResponder``.
struct OperationsSettings: Sendable, Equatable {
    var pingPath: String?
    var statusPath: String?
    var metricsPath: String?
    var slowRequest: Duration?
    var requestTimeout: Duration?
    var maxRequests: Int?
    var drain: Duration = .zero
    var accessLog: String?
    var accessLogQuery = false
    var logFormat: LogFormat = .text

    /// Whether any of them is on (each is off unless configured).
    var isOn: Bool {
        pingPath != nil || statusPath != nil || metricsPath != nil || slowRequest != nil || requestTimeout != nil
            || maxRequests != nil || drain > .zero || accessLog != nil
    }

    /// The access log, opened.
    ///
    /// - Parameter threads: the worker threads, each with its batch of lines.
    /// - Throws: ``HostConfigurationError`` if its file cannot be opened.
    func openAccessLog(threads: Int) throws -> AccessLog? {
        guard let accessLog else { return nil }
        let file = accessLog == "-" ? LogFile.standardOutput : try LogFile(path: accessLog, purpose: "access log")
        return AccessLog(file: file, format: logFormat, includesQuery: accessLogQuery, threads: threads)
    }
}
