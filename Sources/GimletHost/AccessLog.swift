import Foundation
import GimletBackendSupport
import GimletHTTP
import Synchronization

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
///
/// Lines are written in batches, not one `write(2)` per request: each
/// worker thread collects its lines and writes them at once when they reach
/// ``batchBytes`` (32 KiB), and a flusher thread writes what every thread
/// holds once a second (``batchAge``), so a line is in the file at most
/// about a second after its request. `SIGUSR1` writes every batch before it
/// reopens the file, and a graceful stop writes them after the last
/// request. A process that crashes loses the lines of its last second, at
/// most 32 KiB per worker thread. Each batch is one `O_APPEND` write of
/// whole lines, so lines of threads and worker processes never interleave.
final class AccessLog: Sendable {
    let file: LogFile
    let format: LogFormat
    /// Whether lines carry the query string (it may hold tokens: off by default).
    let includesQuery: Bool
    private let pid = Int(ProcessInfo.processInfo.processIdentifier)
    /// One batch per worker thread (a line of a thread past these is written at once).
    private let batches: [Batch]
    private let flusher: PeriodicWork
    // protected by: atomic; set by close(), after which lines are written at once.
    private let closed = Atomic<Bool>(false)

    /// The size at which a thread writes its batch.
    static let batchBytes = 32 * 1024
    /// How long a line waits at most (the flusher's interval).
    static let batchAge: Duration = .seconds(1)

    /// Lines of one worker thread not written yet.
    final class Batch: Sendable {
        struct Lines {
            var bytes: [UInt8] = []
            /// The second the last line was written in, and its text (made once a second).
            var second = -1
            var secondText: [UInt8] = []
        }
        // protected by: the mutex; taken by its worker thread, the flusher and a stop.
        let lines = Mutex(Lines())
    }

    /// - Parameters:
    ///   - threads: the worker threads whose lines are batched; 0 writes
    ///     every line at once (and starts no flusher).
    ///   - flushEvery: the flusher's interval (tests shorten or lengthen it).
    init(file: LogFile, format: LogFormat, includesQuery: Bool, threads: Int = 0,
         flushEvery: Duration = AccessLog.batchAge) {
        self.file = file
        self.format = format
        self.includesQuery = includesQuery
        flusher = PeriodicWork(name: "gimlet-accesslog", interval: flushEvery)
        batches = (0..<max(0, threads)).map { _ in Batch() }
        if !batches.isEmpty {
            flusher.start { [weak self] in
                guard let self else { return false }
                self.flush()
                return true
            }
        }
    }

    /// Writes `exchange`'s line, in `worker`'s batch.
    ///
    /// The line is built at the end of the batch, in its buffer, and the
    /// time's text up to the second is made once a second per thread.
    func record(_ exchange: FinishedExchange, worker: Int) {
        guard batches.indices.contains(worker), !closed.load(ordering: .relaxed) else {
            return file.write(line(for: exchange, time: WallClock.timestamp()))
        }
        let (second, millisecond) = WallClock.now()
        batches[worker].lines.withLock { lines in
            if lines.second != second {
                lines.second = second
                lines.secondText = WallClock.secondText(second)
            }
            if lines.bytes.capacity < Self.batchBytes { lines.bytes.reserveCapacity(Self.batchBytes + 1024) }
            var line = LogLine(format, after: &lines.bytes)
            line.add("time", second: lines.secondText, millisecond: millisecond)
            addFields(of: exchange, to: &line)
            line.finish(into: &lines.bytes)
            // Written under the lock, so a thread's batches reach the file in order.
            if lines.bytes.count >= Self.batchBytes {
                file.write(lines.bytes)
                lines.bytes.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes every thread's batch now (the flusher, `SIGUSR1`, a stop).
    func flush() {
        for batch in batches {
            batch.lines.withLock { lines in
                guard !lines.bytes.isEmpty else { return }
                file.write(lines.bytes)
                lines.bytes.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes what is left and stops the flusher: after the last request.
    func close() {
        closed.store(true, ordering: .relaxed)
        flusher.stop()
        flush()
    }

    /// The line for `exchange`, written at `time`.
    func line(for exchange: FinishedExchange, time: String) -> [UInt8] {
        var line = LogLine(format)
        line.add("time", time)
        addFields(of: exchange, to: &line)
        return line.finished()
    }

    /// The fields after the time, in the documented order.
    private func addFields(of exchange: FinishedExchange, to line: inout LogLine) {
        line.add("request_id", exchange.requestID)
        line.add("pid", integer: pid)
        line.add("method", exchange.method.rawValue)
        line.add("path", exchange.path)
        if includesQuery, !exchange.query.isEmpty { line.add("query", exchange.query) }
        line.add("route", exchange.route ?? "-")
        line.add("status", integer: exchange.status)
        line.add("bytes", integer: exchange.bytes)
        line.add("duration_ms", milliseconds: exchange.written - exchange.began)
        line.add("backend_ms", milliseconds: exchange.measures.time)
        line.add("backend_round_trips", integer: exchange.measures.roundTrips)
        if let traceID = exchange.traceID { line.add("trace_id", traceID) }
    }
}
