import CoreMetrics
import Foundation
@testable import GimletHost
import Logging
import Synchronization
import Testing

/// swift-metrics into the scoreboard (issue 31, item 1): what two worker
/// processes record is summed, in the Prometheus text format, within bounds.
/// Two factories on one scoreboard stand for two processes on its slots.
@Suite struct ScoreboardMetricsRecords {
    /// Log lines, kept.
    final class Lines: @unchecked Sendable {
        // @unchecked: every access holds the mutex.
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        var logger: Logger {
            Logger(label: "test") { _ in Handler(lines: self) }
        }
        struct Handler: LogHandler {
            let lines: Lines
            var logLevel: Logger.Level = .trace
            var metadata: Logger.Metadata = [:]
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let merged = (event.metadata ?? [:]).merging(metadata) { a, _ in a }
                lines.lines.withLock { $0.append("\(event.message) \(merged.sorted { $0.key < $1.key })") }
            }
        }
    }

    func workers(_ board: Scoreboard, _ log: Lines = Lines()) -> (ScoreboardMetrics, ScoreboardMetrics) {
        let first = ScoreboardMetrics(), second = ScoreboardMetrics()
        first.attach(board.series, slot: 0, logger: log.logger)
        second.attach(board.series, slot: 1, logger: log.logger)
        return (first, second)
    }

    @Test func countersOfTwoWorkersAreOneSeriesSummed() throws {
        let board = try Scoreboard(processes: 2, threads: 1)
        let (first, second) = workers(board)
        first.makeCounter(label: "app_sign_ins_total", dimensions: [("method", "password")]).increment(by: 2)
        second.makeCounter(label: "app_sign_ins_total", dimensions: [("method", "password")]).increment(by: 3)
        second.makeCounter(label: "app_sign_ins_total", dimensions: [("method", "key")]).increment(by: 1)
        first.makeCounter(label: "http.requests", dimensions: [("route.name", "a \"b\"\n\\")]).increment(by: 1)
        #expect(board.series.prometheus() == """
            # TYPE app_sign_ins_total counter
            app_sign_ins_total{method="password"} 5
            app_sign_ins_total{method="key"} 1
            # TYPE http_requests counter
            http_requests{route_name="a \\"b\\"\\n\\\\"} 1

            """)
        #expect(board.series.used == 3)
    }

    @Test func aGaugeIsTheSumOfEachWorkersLastValueAndEndsWithItsWorker() throws {
        let board = try Scoreboard(processes: 2, threads: 1)
        let (first, second) = workers(board)
        let a = first.makeMeter(label: "queue_depth", dimensions: [])
        let b = second.makeRecorder(label: "queue_depth", dimensions: [], aggregate: false)
        a.set(Int64(4))
        a.increment(by: 1.5)
        b.record(Int64(10))
        b.record(Int64(2))
        #expect(board.series.prometheus() == "# TYPE queue_depth gauge\nqueue_depth 7.5\n")
        board.release(1)
        #expect(board.series.prometheus() == "# TYPE queue_depth gauge\nqueue_depth 5.5\n", "a worker that ended counts no more")
    }

    @Test func timersAndRecordersAreHistograms() throws {
        let board = try Scoreboard(processes: 2, threads: 1)
        let (first, second) = workers(board)
        first.makeTimer(label: "db_query_seconds", dimensions: [("table", "users")]).recordNanoseconds(3_000_000)
        second.makeTimer(label: "db_query_seconds", dimensions: [("table", "users")]).recordNanoseconds(2_000_000_000)
        first.makeRecorder(label: "payload_bytes", dimensions: [], aggregate: true).record(0.25)
        let text = board.series.prometheus()
        #expect(text.contains("# TYPE db_query_seconds histogram\n"))
        #expect(text.contains("db_query_seconds_bucket{table=\"users\",le=\"0.005\"} 1\n"))
        #expect(text.contains("db_query_seconds_bucket{table=\"users\",le=\"1\"} 1\n"))
        #expect(text.contains("db_query_seconds_bucket{table=\"users\",le=\"2.5\"} 2\n"))
        #expect(text.contains("db_query_seconds_bucket{table=\"users\",le=\"+Inf\"} 2\n"))
        #expect(text.contains("db_query_seconds_sum{table=\"users\"} 2.003\n"))
        #expect(text.contains("db_query_seconds_count{table=\"users\"} 2\n"))
        #expect(text.contains("payload_bytes_bucket{le=\"0.25\"} 1\n") && text.contains("payload_bytes_sum 0.25\n"))
    }

    @Test func metricsMadeBeforeTheScoreboardRecordOnceItIsAttached() throws {
        let board = try Scoreboard(processes: 1, threads: 1)
        let factory = ScoreboardMetrics()
        let early = factory.makeCounter(label: "early_total", dimensions: [])
        early.increment(by: 5)  // before: nowhere to record
        factory.attach(board.series, slot: 0, logger: Lines().logger)
        early.increment(by: 1)
        #expect(board.series.prometheus() == "# TYPE early_total counter\nearly_total 1\n")
    }

    @Test func pastTheBoundASeriesIsRefusedWithALogLineAndRecordsNothing() throws {
        let board = try Scoreboard(processes: 1, threads: 1, series: 2)
        let log = Lines()
        let factory = ScoreboardMetrics()
        factory.attach(board.series, slot: 0, logger: log.logger)
        factory.makeCounter(label: "a_total", dimensions: []).increment(by: 1)
        factory.makeCounter(label: "b_total", dimensions: []).increment(by: 1)
        factory.makeCounter(label: "c_total", dimensions: []).increment(by: 1)
        factory.makeCounter(label: "gimlet_requests_total", dimensions: []).increment(by: 1)
        factory.makeMeter(label: "a_total", dimensions: []).set(Int64(9))
        factory.makeCounter(label: String(repeating: "x", count: 200), dimensions: []).increment(by: 1)
        #expect(board.series.prometheus() == "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 1\n")
        let lines = log.all
        #expect(lines.count == 4, "\(lines)")
        #expect(lines.first?.contains("at most 2 series") == true, "\(lines)")
        #expect(lines.contains { $0.contains("starts with gimlet_") })
        #expect(lines.contains { $0.contains("exists as a counter") })
        #expect(lines.contains { $0.contains("longer than 120 bytes") })
    }

    @Test func theStatusReportEndsWithTheAppsSeries() throws {
        let board = try Scoreboard(processes: 1, threads: 1)
        let factory = ScoreboardMetrics()
        factory.attach(board.series, slot: 0, logger: Lines().logger)
        factory.makeCounter(label: "lab_sets_total", dimensions: []).increment(by: 7)
        let text = StatusReport(scoreboard: board, listenQueue: nil).prometheus()
        #expect(text.hasSuffix("# TYPE lab_sets_total counter\nlab_sets_total 7\n"))
        #expect(text.contains("gimlet_metric_series{state=\"used\"} 1\n"))
        #expect(text.contains("gimlet_metric_series{state=\"capacity\"} 256\n"))
    }

    @Test func anInheritedScoreboardHasTheSameSeries() throws {
        let board = try Scoreboard(processes: 2, threads: 1, series: 8)
        let (first, _) = workers(board)
        first.makeCounter(label: "x_total", dimensions: []).increment(by: 2)
        let worker = try Scoreboard(inherited: dup(board.words.descriptor))
        #expect(worker.series.capacity == 8)
        let factory = ScoreboardMetrics()
        factory.attach(worker.series, slot: 1, logger: Lines().logger)
        factory.makeCounter(label: "x_total", dimensions: []).increment(by: 3)
        #expect(board.series.prometheus() == "# TYPE x_total counter\nx_total 5\n")
    }

    /// Workers that start together make the same series at once: each
    /// series still takes one record, not one per worker (a defect found by
    /// the ASan run of the operations test: three workers, two records).
    /// Threads on one table stand for processes: the words and their atomic
    /// operations are the same.
    @Test func workersMakingTheSameSeriesAtOnceShareOneRecord() throws {
        let workers = 8, names = 40
        let board = try Scoreboard(processes: workers, threads: 1)
        let keys = (0..<names).map { MetricSeries.key(name: "start_\($0)_total", labels: [("worker", "any")]) }
        let found = Mutex<[[Int]]>([])
        let ready = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let threads = (0..<workers).map { _ in
            Thread {
                ready.add(1, ordering: .relaxed)
                while ready.load(ordering: .relaxed) < workers {}  // all at once
                let indexes = keys.map { key -> Int in
                    guard case .success(let index) = board.series.resolve(kind: .counter, key: key) else { return -1 }
                    board.series.add(index, 1)
                    return index
                }
                found.withLock { $0.append(indexes) }
                done.signal()
            }
        }
        threads.forEach { $0.start() }
        for _ in 0..<workers { #expect(done.wait(timeout: .now() + 10) == .success, "every worker finished") }
        let all = found.withLock { $0 }
        #expect(board.series.used == names, "one record per series")
        #expect(all.allSatisfy { $0 == all[0] }, "every worker found the same records: \(all)")
        #expect(board.series.prometheus().split(separator: "\n").filter { $0.hasSuffix(" \(workers)") }.count == names)
    }

    /// A claimer that died before publishing its record: the others wait for
    /// it a moment (``MetricSeries/claimWait``), then pass it by.
    @Test func aRecordLeftHalfWrittenIsPassedBy() throws {
        let board = try Scoreboard(processes: 1, threads: 1, series: 4)
        board.words[board.series.record(0)] = 1  // claimed, never published
        let factory = ScoreboardMetrics()
        factory.attach(board.series, slot: 0, logger: Lines().logger)
        let started = ContinuousClock.now
        factory.makeCounter(label: "after_total", dimensions: []).increment(by: 2)
        #expect(ContinuousClock.now - started >= MetricSeries.claimWait)
        #expect(board.series.prometheus() == "# TYPE after_total counter\nafter_total 2\n")
        #expect(board.series.used == 1)
    }
}
