import Foundation
@testable import GimletHost
import Testing

/// The shared scoreboard the status page, the watchdog and the supervisor
/// read, and the report made from it: tested without a process or a socket.
@Suite struct ScoreboardRecords {
    typealias Word = Scoreboard.ThreadWord

    func outcome(_ status: Int, milliseconds: UInt64, roundTrips: Int = 0, failures: Int = 0, slow: Bool = false) -> Scoreboard.Outcome {
        Scoreboard.Outcome(status: status, durationMicros: milliseconds * 1000, roundTrips: roundTrips, failures: failures,
                           backendMicros: UInt64(roundTrips) * 100, slow: slow)
    }

    @Test func aRequestInFlightIsShownThenCountedWhenItEnds() throws {
        let board = try Scoreboard(processes: 2, threads: 2)
        board.claim(1)
        board.assign(1, pid: 4242)
        board.setState(1, .serving)
        board.begin(1, 0, method: "POST", path: "/cart/add", requestID: "req-1", thread: 77)
        let current = try #require(board.current(1, 0))
        #expect(current.method == "POST" && current.path == "/cart/add" && current.requestID == "req-1" && current.handle == 77)
        #expect(board.current(1, 1) == nil, "the other thread is idle")
        board.end(1, 0, outcome(404, milliseconds: 30, roundTrips: 2, failures: 1, slow: true))
        #expect(board.current(1, 0) == nil)
        #expect(board.sum(Word.requests) == 1)
        #expect(board.sum(Word.statusClasses + 3) == 1, "a 4xx")
        #expect(board.sum(Word.slow) == 1 && board.sum(Word.roundTrips) == 2 && board.sum(Word.failures) == 1)
        // 30 ms is under the 50 ms bound, the fourth.
        #expect(board.sum(Word.histogram + 3) == 1)
        board.begin(1, 1, method: "GET", path: "/", requestID: "", thread: 1)
        board.end(1, 1, outcome(0, milliseconds: 20_000))
        #expect(board.sum(Word.unanswered) == 1, "no status: the body ended early")
        #expect(board.sum(Word.histogram + Scoreboard.bucketBounds.count) == 1, "past the last bound: +Inf")
    }

    @Test func aLongPathIsCutToItsFirst64Bytes() throws {
        let board = try Scoreboard(processes: 1, threads: 1)
        board.claim(0)
        let path = "/" + String(repeating: "abcdefgh", count: 20)
        board.begin(0, 0, method: "GET", path: path, requestID: "r", thread: 0)
        #expect(board.current(0, 0)?.path == String(path.prefix(Scoreboard.pathBytes)))
        board.begin(0, 0, method: "GET", path: "/short", requestID: "r", thread: 0)
        #expect(board.current(0, 0)?.path == "/short", "nothing of the longer path before it is left")
        // Around the 8-byte words the text is packed into, and non-ASCII.
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64] {
            let text = String(repeating: "p", count: length)
            board.begin(0, 0, method: "DELETE", path: text, requestID: "é-\(length)", thread: 0)
            #expect(board.current(0, 0)?.path == text && board.current(0, 0)?.requestID == "é-\(length)", "\(length)")
            #expect(board.current(0, 0)?.method == "DELETE")
        }
    }

    @Test func aReplacedWorkerCountsItsOwnRequestsOnly() throws {
        let board = try Scoreboard(processes: 1, threads: 2)
        board.claim(0)
        for thread in [0, 1, 1] {
            board.begin(0, thread, method: "GET", path: "/", requestID: "", thread: 0)
            board.end(0, thread, outcome(200, milliseconds: 1))
        }
        #expect(board.requestsOfCurrentProcess(0) == 3)
        board.begin(0, 0, method: "GET", path: "/stuck", requestID: "", thread: 0)
        board.release(0)
        #expect(board.current(0, 0) == nil, "a killed worker's busy thread is freed")
        board.claim(0)
        #expect(board.requestsOfCurrentProcess(0) == 0, "the new process starts from zero")
        #expect(board.sum(Word.requests) == 3, "the service's total keeps the old one's")
    }

    @Test func aWorkerOpensTheSupervisorsBoardAndNothingElse() throws {
        let board = try Scoreboard(processes: 3, threads: 4)
        board.claim(2)
        board.assign(2, pid: 99)
        let shared = try Scoreboard(inherited: dup(board.words.descriptor))
        #expect(shared.processCapacity == 3 && shared.threadCapacity == 4)
        #expect(shared.pid(2) == 99)
        shared.requestRecycling(2)
        #expect(board.wantsRecycling(2), "the same memory")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-board-\(UUID().uuidString)")
        try Data(repeating: 7, count: 4096).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let descriptor = open(file.path, O_RDWR)
        let error = #expect(throws: HostConfigurationError.self) { _ = try Scoreboard(inherited: descriptor) }
        #expect(error?.message.contains("is not a Gimlet scoreboard") == true, "\(String(describing: error))")
    }
}

@Suite struct StatusReports {
    func board() throws -> Scoreboard {
        let board = try Scoreboard(processes: 3, threads: 2)
        for slot in [0, 2] {
            board.claim(slot)
            board.assign(slot, pid: Int32(1000 + slot))
            board.setState(slot, .serving)
        }
        for (status, milliseconds) in [(200, 3), (200, 7), (302, 40), (500, 4000)] {
            board.begin(0, 0, method: "GET", path: "/", requestID: "", thread: 0)
            board.end(0, 0, Scoreboard.Outcome(status: status, durationMicros: UInt64(milliseconds) * 1000, roundTrips: 1,
                                               failures: 0, backendMicros: 250, slow: milliseconds > 1000))
        }
        board.begin(2, 1, method: "PUT", path: "/busy", requestID: "r-9", thread: 5)
        return board
    }

    @Test func theJSONHasTheTotalsTheLiveWorkersAndTheirRequestsInFlight() throws {
        let report = StatusReport(scoreboard: try board(), listenQueue: nil)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["requests"] as? Int == 4)
        #expect((object["requests_by_status"] as? [String: Int]) == ["1xx": 0, "2xx": 2, "3xx": 1, "4xx": 0, "5xx": 1])
        #expect(object["slow_requests"] as? Int == 1)
        #expect(object["listen_queue"] is NSNull, "unknown, said as null")
        #expect(object["busy_threads"] as? Int == 1 && object["idle_threads"] as? Int == 3)
        let buckets = try #require((object["request_duration"] as? [String: Any])?["buckets_ms"] as? [String: Int])
        #expect(buckets["5"] == 1 && buckets["10"] == 2 && buckets["50"] == 3 && buckets["+Inf"] == 4, "cumulative: \(buckets)")
        let workers = try #require(object["workers"] as? [[String: Any]])
        #expect(workers.compactMap { $0["pid"] as? Int } == [1000, 1002], "the vacant slot is not a worker")
        let current = try #require(workers.last?["current"] as? [[String: Any]])
        #expect(current.first?["path"] as? String == "/busy" && current.first?["request_id"] as? String == "r-9")
    }

    @Test func thePrometheusTextIsWellFormedAndAgreesWithTheJSON() throws {
        let text = StatusReport(scoreboard: try board(), listenQueue: 3).prometheus()
        var declared: Set<String> = []
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                declared.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                #expect(parts.count == 2, "name{labels} value: \(line)")
                let name = String(parts[0])
                let family = String(name.prefix { $0 != "{" })
                #expect(declared.contains(family) || declared.contains { family.hasPrefix($0 + "_") }, "typed before use: \(line)")
                samples[name] = Double(parts[1])
            }
        }
        #expect(samples["gimlet_requests_total{status=\"2xx\"}"] == 2)
        #expect(samples["gimlet_listen_queue"] == 3)
        #expect(samples["gimlet_request_duration_seconds_count"] == 4)
        #expect(samples["gimlet_request_duration_seconds_bucket{le=\"+Inf\"}"] == 4)
        let bounds = Scoreboard.bucketBounds.map { samples["gimlet_request_duration_seconds_bucket{le=\"\(Double($0) / 1000)\"}"] ?? -1 }
        #expect(bounds == bounds.sorted() && !bounds.contains(-1), "cumulative, one per bound: \(bounds)")
        #expect(samples["gimlet_worker_busy_threads{pid=\"1002\"}"] == 1)
    }
}
