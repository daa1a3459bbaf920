import GimletHTTP
import GimletTransport
import Synchronization

/// Answers the operator's paths before the app sees the request, like
/// php-fpm's `ping.path` and `pm.status_path`: `--ping-path` (`pong`, or
/// `503` while a graceful stop drains), `--status-path` (JSON, or the
/// Prometheus text format with `?format=prometheus`) and `--metrics-path`
/// (Prometheus). Everything else goes to the app.
///
/// The figures cover every worker process of the service: they come from
/// the shared ``Scoreboard``.
struct StatusResponder: Responder {
    let app: any Responder
    let scoreboard: Scoreboard
    /// This process's slot on it.
    let slot: Int
    let settings: OperationsSettings
    /// The listening socket, once the transport has opened it (-1 before).
    let listener: ListenerHandle

    func validate() throws { try app.validate() }
    func reload() throws { try app.reload() }
    func shutdown() { app.shutdown() }
    /// The app's answer: the operator's paths take no body.
    func streamsBody(_ request: Request) -> Bool { app.streamsBody(request) }

    func respond(to request: Request) -> Response {
        let path = request.path
        if path == settings.pingPath {
            guard !scoreboard.isDraining else {
                var response = Response.text("stopping", status: .serviceUnavailable)
                response.headers["Cache-Control"] = "no-store"
                return response
            }
            var response = Response.text("pong")
            response.headers["Cache-Control"] = "no-store"
            return response
        }
        let prometheus: Bool
        if path == settings.metricsPath {
            prometheus = true
        } else if path == settings.statusPath {
            prometheus = request.query["format"] == "prometheus"
        } else {
            return app.respond(to: request)
        }
        // This process's own figures as of now, not of its last heartbeat.
        scoreboard.storeConnections(slot)
        scoreboard.storeSecurityEvents(slot)
        scoreboard.storeCommits(slot)
        let report = StatusReport(scoreboard: scoreboard, listenQueue: listener.queueLength())
        var response = prometheus
            ? Response.text(report.prometheus())
            : Response.text(report.json())
        response.headers["Content-Type"] = prometheus ? "text/plain; version=0.0.4; charset=utf-8" : "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response
    }
}

/// The transport's listening socket, known once the transport is made.
final class ListenerHandle: Sendable {
    private let descriptor = Atomic<Int32>(-1)

    func set(_ fd: Int32) { descriptor.store(fd, ordering: .relaxed) }

    /// Connections waiting to be accepted, where the kernel says (TCP); `nil` otherwise.
    func queueLength() -> Int? {
        let fd = descriptor.load(ordering: .relaxed)
        return fd >= 0 ? SocketCalls.acceptQueueLength(fd) : nil
    }
}
