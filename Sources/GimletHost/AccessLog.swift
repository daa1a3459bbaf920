import Foundation
import GimletHTTP

/// `--access-log`: one line per request, after its answer was written.
///
/// Fields, in this order (logfmt with `--log-format text`, one JSON object
/// with `json`):
///
/// | field | meaning |
/// | --- | --- |
/// | `time` | when the answer was written, UTC, ISO 8601 with milliseconds |
/// | `request_id` | the web server's `X-Request-Id` or one the host made |
/// | `pid` | the worker process |
/// | `method`, `path` | the request; the path without its query string |
/// | `query` | the query string, only with `--access-log-query` |
/// | `route` | the pattern of the route that matched, `-` if none did |
/// | `status` | the status answered; `0` when the request was dropped unanswered |
/// | `bytes` | bytes of the answer (CGI headers and body) handed to the web server |
/// | `duration_ms` | from the request's head arriving to its answer written |
/// | `backend_ms` | time in the session backend (load and commit) |
/// | `backend_round_trips` | round trips to it (0 when the request used no server-side key) |
///
/// A text line:
///
///     time=2026-11-22T10:15:02.123Z request_id=5f0c… pid=4242 method=GET path=/notes/7 route=/notes/:id status=200 bytes=512 duration_ms=3.214 backend_ms=0.412 backend_round_trips=1
final class AccessLog: Sendable {
    let file: LogFile
    let format: LogFormat
    /// Whether lines carry the query string (it may hold tokens: off by default).
    let includesQuery: Bool
    private let pid = Int(ProcessInfo.processInfo.processIdentifier)

    init(file: LogFile, format: LogFormat, includesQuery: Bool) {
        self.file = file
        self.format = format
        self.includesQuery = includesQuery
    }

    /// Writes `exchange`'s line.
    func record(_ exchange: FinishedExchange) {
        file.write(line(for: exchange, time: WallClock.timestamp()))
    }

    /// The line for `exchange`, written at `time`.
    func line(for exchange: FinishedExchange, time: String) -> [UInt8] {
        var line = LogLine(format)
        line.add("time", time)
        line.add("request_id", exchange.requestID)
        line.add("pid", integer: pid)
        line.add("method", exchange.method.rawValue)
        line.add("path", exchange.path)
        if includesQuery, !exchange.query.isEmpty { line.add("query", exchange.query) }
        line.add("route", exchange.route ?? "-")
        line.add("status", integer: exchange.status)
        line.add("bytes", integer: exchange.bytes)
        line.add("duration_ms", milliseconds: exchange.written - exchange.began)
        line.add("backend_ms", milliseconds: exchange.measures.backendTime)
        line.add("backend_round_trips", integer: exchange.measures.backendRoundTrips)
        return line.finished()
    }
}
