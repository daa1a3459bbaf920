/// What the host watches of every request a transport serves: the worker
/// thread's current request, counters, the slow-request log, the request
/// timeout. Transports call it on the worker thread; it must
/// not block.
package protocol ExchangeObserver: Sendable {
    /// A request's head arrived on worker thread `worker`, before its body is read.
    func began(worker: Int, method: HTTPMethod, path: String, requestID: String)
    /// The request is built, the responder is next: set its deadline.
    func prepare(_ request: Request, worker: Int, began: ContinuousClock.Instant)
    /// The answer was written (or could not be).
    func finished(worker: Int, _ exchange: FinishedExchange)
}

/// One request's figures, once its answer is written.
package struct FinishedExchange: Sendable {
    package var method: HTTPMethod
    /// The path without the query string.
    package var path: String
    /// The query string (`QUERY_STRING`), empty when there is none.
    package var query: String
    /// The request's id (see ``RequestID``).
    package var requestID: String
    /// The pattern of the route that matched, if the router got that far.
    package var route: String?
    package var status: Int
    /// Bytes of the CGI answer (headers and body) handed to the web server.
    package var bytes: Int
    package var began: ContinuousClock.Instant
    /// When the body had been read (the responder started).
    package var bodyRead: ContinuousClock.Instant
    /// When the responder returned.
    package var responded: ContinuousClock.Instant
    package var written: ContinuousClock.Instant
    package var measures: BackendMeasures
    /// The request's trace id, when a tracer propagates W3C trace context.
    package var traceID: String?

    package init(method: HTTPMethod, path: String, query: String, requestID: String, route: String?, status: Int,
                 bytes: Int, began: ContinuousClock.Instant, bodyRead: ContinuousClock.Instant,
                 responded: ContinuousClock.Instant, written: ContinuousClock.Instant, measures: BackendMeasures) {
        self.method = method
        self.path = path
        self.query = query
        self.requestID = requestID
        self.route = route
        self.status = status
        self.bytes = bytes
        self.began = began
        self.bodyRead = bodyRead
        self.responded = responded
        self.written = written
        self.measures = measures
    }
}

/// What a request spent on backing stores: round trips, failures, and the
/// time to load before its handler and to commit after it.
///
/// Any layer between the transport and the handler may add to it (today
/// the session middleware, for its store); the host reports it in the
/// access log, the slow log and the scoreboard, without knowing which
/// layer or store it came from.
package struct BackendMeasures: Sendable, Equatable {
    /// Round trips to a backing store (a load, a commit).
    package var roundTrips = 0
    /// Round trips that failed (the store unreachable, an error reply; not a conflict).
    package var failures = 0
    /// Time spent loading, before the handler.
    package var load: Duration = .zero
    /// Time spent committing changes, after the handler.
    package var commit: Duration = .zero

    package init() {}

    package var time: Duration { load + commit }

    /// Adds `other`'s round trips and times (a re-run's to the request's).
    package static func += (total: inout BackendMeasures, other: BackendMeasures) {
        total.roundTrips += other.roundTrips
        total.failures += other.failures
        total.load += other.load
        total.commit += other.commit
    }
}

/// A transport's view of one observed request, from its head to its written answer.
package struct ObservedExchange {
    private let observer: any ExchangeObserver
    private let worker: Int
    private var finished: FinishedExchange
    /// The request's method, path and query, found once for the monitor and the request.
    let line: RequestLine

    /// Starts observing: the head has arrived.
    package init(observer: any ExchangeObserver, worker: Int, environ: CGIEnvironment) {
        self.observer = observer
        self.worker = worker
        let now = ContinuousClock.now
        line = RequestLine(environ)
        let requestID = RequestID.of(line, in: environ)
        finished = FinishedExchange(
            method: line.method, path: line.path, query: line.queryString, requestID: requestID, route: nil,
            status: 0, bytes: 0, began: now, bodyRead: now, responded: now, written: now, measures: BackendMeasures())
        observer.began(worker: worker, method: line.method, path: line.path, requestID: requestID)
    }

    /// The request's id: on its log lines and in its `X-Request-Id` response header.
    package var requestID: String { finished.requestID }

    /// The body is read; the request is about to run: it gets its id.
    mutating func prepare(_ request: Request) {
        finished.bodyRead = .now
        request.id = finished.requestID
        request.logger[metadataKey: "request_id"] = "\(finished.requestID)"
        observer.prepare(request, worker: worker, began: finished.began)
    }

    /// The responder answered `status`.
    mutating func responded(_ request: Request, status: Int) {
        finished.responded = .now
        finished.status = status
        finished.route = request.routePattern
        finished.measures = request.measures
        finished.traceID = request.traceID
    }

    /// The transport answered by itself (413, 400), without running the responder.
    package mutating func answered(status: Int) {
        finished.bodyRead = .now
        finished.responded = finished.bodyRead
        finished.status = status
    }

    /// `bytes` were written (or the web server went away): the request is over.
    package mutating func written(_ bytes: Int) {
        finished.written = .now
        finished.bytes = bytes
        observer.finished(worker: worker, finished)
    }
}
