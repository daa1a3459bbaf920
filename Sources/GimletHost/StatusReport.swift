import Foundation
import GimletHTTP

/// The status page's figures, read from the ``Scoreboard`` at one moment,
/// as JSON or in the Prometheus text exposition format.
///
/// Not swift-metrics' registry: it lives in one process, and these figures
/// are the sum over every worker process, which the shared scoreboard
/// already holds; rendering the text format takes a page of code. The
/// app's swift-metrics land in the same scoreboard (``ScoreboardMetrics``)
/// and follow Gimlet's series.
struct StatusReport {
    struct Worker {
        var slot: Int
        var pid: Int32
        var state: String
        var started: UInt64
        var requests: UInt64
        var busyThreads: Int
        var current: [Scoreboard.CurrentRequest]
        /// As of the worker's last heartbeat (at most 100 ms old).
        var connections: Scoreboard.Connections
    }

    typealias Word = Scoreboard.ThreadWord

    var startTime: UInt64
    var requests: UInt64
    /// 1xx … 5xx.
    var statusClasses: [UInt64]
    var unanswered: UInt64
    var slow: UInt64
    var durationSeconds: Double
    /// Per bucket of ``Scoreboard/bucketBounds``, then +Inf; not cumulative.
    var histogram: [UInt64]
    var roundTrips: UInt64
    var failures: UInt64
    var backendSeconds: Double
    var listenQueue: Int?
    var threadsPerWorker: Int
    var workers: [Worker]
    /// Security events of every worker process, ever, per kind (``GimletHTTP/SecurityEvent``).
    var securityEvents: [SecurityEvent: UInt64]
    /// Session commits of every worker process, ever, and the transactions
    /// that applied them (fewer when group commit batched them).
    var commits: (commits: UInt64, transactions: UInt64)
    /// The app's metrics (``ScoreboardMetrics``) in the Prometheus text format.
    var appMetrics: String
    var appSeriesUsed: Int
    var appSeriesCapacity: Int

    init(scoreboard: Scoreboard, listenQueue: Int?) {
        func sum(_ word: Int) -> UInt64 { scoreboard.sum(word) }
        startTime = scoreboard.startTime
        requests = sum(Word.requests)
        statusClasses = (0..<5).map { sum(Word.statusClasses + $0) }
        unanswered = sum(Word.unanswered)
        slow = sum(Word.slow)
        durationSeconds = Double(sum(Word.durationMicros)) / 1e6
        histogram = (0...Scoreboard.bucketBounds.count).map { sum(Word.histogram + $0) }
        roundTrips = sum(Word.roundTrips)
        failures = sum(Word.failures)
        backendSeconds = Double(sum(Word.backendMicros)) / 1e6
        self.listenQueue = listenQueue
        threadsPerWorker = scoreboard.threadCapacity
        securityEvents = scoreboard.securityEvents()
        commits = scoreboard.commits()
        appMetrics = scoreboard.series.prometheus()
        appSeriesUsed = scoreboard.series.used
        appSeriesCapacity = scoreboard.series.capacity
        workers = (0..<scoreboard.processCapacity).compactMap { slot in
            let state = scoreboard.state(slot)
            guard state != .vacant else { return nil }
            let current = (0..<scoreboard.threadCapacity).compactMap { scoreboard.current(slot, $0) }
            return Worker(slot: slot, pid: scoreboard.pid(slot), state: "\(state)",
                          started: scoreboard.words[scoreboard.processBase(slot) + Scoreboard.ProcessWord.started],
                          requests: scoreboard.requestsOfCurrentProcess(slot), busyThreads: current.count,
                          current: current, connections: scoreboard.connections(slot))
        }
    }

    var busyThreads: Int { workers.reduce(0) { $0 + $1.busyThreads } }
    var idleThreads: Int { workers.count * threadsPerWorker - busyThreads }
    var connectionsOpen: Int { workers.reduce(0) { $0 + $1.connections.open } }
    var connectionsInUse: Int { workers.reduce(0) { $0 + $1.connections.inUse } }

    // MARK: - JSON

    func json() -> String {
        var object: [String: Any] = [
            "start_time": startTime,
            "uptime_seconds": max(0, Int(Date().timeIntervalSince1970) - Int(startTime)),
            "requests": requests,
            "requests_by_status": Dictionary(uniqueKeysWithValues: statusClasses.enumerated().map { ("\($0.offset + 1)xx", $0.element) }),
            "requests_unanswered": unanswered,
            "in_flight": busyThreads,
            "busy_threads": busyThreads,
            "idle_threads": idleThreads,
            "slow_requests": slow,
            "request_duration": [
                "count": requests, "sum_seconds": durationSeconds,
                "buckets_ms": Dictionary(uniqueKeysWithValues: cumulativeBuckets().map { ($0.label, $0.count) }),
            ] as [String: Any],
            "session_backend": [
                "round_trips": roundTrips, "failures": failures, "seconds": backendSeconds,
                "connections_open": connectionsOpen, "connections_in_use": connectionsInUse,
                "commits": commits.commits, "commit_transactions": commits.transactions,
            ] as [String: Any],
            "security_events": Dictionary(uniqueKeysWithValues: SecurityEvent.allCases.map { ($0.rawValue, securityEvents[$0, default: 0]) }),
            "workers": workers.map { worker -> [String: Any] in
                [
                    "pid": worker.pid, "state": worker.state, "start_time": worker.started, "requests": worker.requests,
                    "busy_threads": worker.busyThreads,
                    "session_backend_connections": [
                        "open": worker.connections.open, "in_use": worker.connections.inUse,
                        "created": worker.connections.created, "discarded": worker.connections.discarded,
                    ],
                    "current": worker.current.map { ["method": $0.method, "path": $0.path, "request_id": $0.requestID, "seconds": $0.seconds] as [String: Any] },
                ]
            },
        ]
        object["listen_queue"] = listenQueue ?? NSNull()
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Cumulative counts per upper bound in milliseconds, then `+Inf` (= all).
    private func cumulativeBuckets() -> [(label: String, seconds: String, count: UInt64)] {
        var running: UInt64 = 0
        var result: [(String, String, UInt64)] = []
        for (index, count) in histogram.enumerated() {
            running += count
            if index < Scoreboard.bucketBounds.count {
                let bound = Scoreboard.bucketBounds[index]
                result.append(("\(bound)", "\(Double(bound) / 1000)", running))
            } else {
                result.append(("+Inf", "+Inf", running))
            }
        }
        return result
    }

    // MARK: - Prometheus text format 0.0.4

    func prometheus() -> String {
        var out = ""
        /// A family: its help and type lines, then one line per sample, each
        /// the name, a `suffix` (labels such as `{state="busy"}`, or a
        /// histogram's `_sum`) and the value.
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(suffix: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.suffix) \(sample.value)\n" }
        }
        family("gimlet_start_time_seconds", "gauge", "When the service started (Unix time).", [("", "\(startTime)")])
        family("gimlet_requests_total", "counter", "Requests answered, by status class.",
               statusClasses.enumerated().map { ("{status=\"\($0.offset + 1)xx\"}", "\($0.element)") })
        family("gimlet_requests_unanswered_total", "counter", "Requests dropped without an answer (the body ended early).",
               [("", "\(unanswered)")])
        family("gimlet_requests_in_flight", "gauge", "Requests being handled now.", [("", "\(busyThreads)")])
        family("gimlet_threads", "gauge", "Worker threads of the live worker processes, by state.",
               [("{state=\"busy\"}", "\(busyThreads)"), ("{state=\"idle\"}", "\(idleThreads)")])
        if let listenQueue {
            family("gimlet_listen_queue", "gauge", "Connections waiting to be accepted.", [("", "\(listenQueue)")])
        }
        family("gimlet_slow_requests_total", "counter", "Requests slower than --slow-request.", [("", "\(slow)")])
        family("gimlet_request_duration_seconds", "histogram", "Time from a request's head to its written answer.",
               cumulativeBuckets().map { ("_bucket{le=\"\($0.seconds)\"}", "\($0.count)") }
                   + [("_sum", "\(durationSeconds)"), ("_count", "\(histogram.reduce(0, +))")])
        family("gimlet_session_backend_round_trips_total", "counter", "Round trips to the session backend.",
               [("", "\(roundTrips)")])
        family("gimlet_session_backend_failures_total", "counter", "Session backend round trips that failed.",
               [("", "\(failures)")])
        family("gimlet_session_backend_seconds_total", "counter", "Time spent in session backend round trips.",
               [("", "\(backendSeconds)")])
        family("gimlet_session_backend_connections", "gauge",
               "Pooled session backend connections of the live worker processes, by state.",
               [("{state=\"in_use\"}", "\(connectionsInUse)"), ("{state=\"idle\"}", "\(connectionsOpen - connectionsInUse)")])
        family("gimlet_session_commits_total", "counter",
               "Requests' session changes committed (or refused as conflicts) by a SQL store.", [("", "\(commits.commits)")])
        family("gimlet_session_commit_transactions_total", "counter",
               "Transactions that applied them: fewer than the commits when group commit batched concurrent ones.",
               [("", "\(commits.transactions)")])
        family("gimlet_security_events_total", "counter",
               "Requests and connections refused or noticed, by kind (each is logged a few times a minute per client at most).",
               SecurityEvent.allCases.map { ("{kind=\"\($0.rawValue)\"}", "\(securityEvents[$0, default: 0])") })
        family("gimlet_worker_requests", "gauge", "Requests served by each live worker process since it started.",
               workers.map { ("{pid=\"\($0.pid)\"}", "\($0.requests)") })
        family("gimlet_worker_busy_threads", "gauge", "Busy threads of each live worker process.",
               workers.map { ("{pid=\"\($0.pid)\"}", "\($0.busyThreads)") })
        family("gimlet_metric_series", "gauge", "Series of the app's metrics (ScoreboardMetrics) the scoreboard holds, of its capacity.",
               [("{state=\"used\"}", "\(appSeriesUsed)"), ("{state=\"capacity\"}", "\(appSeriesCapacity)")])
        return out + appMetrics
    }
}
