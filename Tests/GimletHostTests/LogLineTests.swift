import Foundation
@testable import GimletHost
import GimletHTTP
import Logging
import Testing

/// The access log's line format and the request id, without a server.
@Suite struct LogLineTests {
    static func exchange(path: String, query: String = "", route: String? = "/notes/:id") -> FinishedExchange {
        let start = ContinuousClock.now
        var measures = BackendMeasures()
        measures.roundTrips = 1
        measures.load = .microseconds(412)
        return FinishedExchange(
            method: .get, path: path, query: query, requestID: "5f0c", route: route, status: 200, bytes: 512,
            began: start, bodyRead: start, responded: start + .microseconds(3000),
            written: start + .microseconds(3214), measures: measures)
    }

    @Test func aTextLineIsLogfmtInTheDocumentedOrder() {
        let log = AccessLog(file: .standardOutput, format: .text, includesQuery: false)
        let line = String(decoding: log.line(for: Self.exchange(path: "/notes/7", query: "token=x"),
                                             time: "2026-11-22T10:15:02.123Z"), as: UTF8.self)
        #expect(line == "time=2026-11-22T10:15:02.123Z request_id=5f0c pid=\(getpid()) method=GET path=/notes/7 route=/notes/:id status=200 bytes=512 duration_ms=3.214 backend_ms=0.412 backend_round_trips=1\n")
    }

    /// A path a client chose cannot break the line or forge a field.
    @Test func valuesThatCouldBreakALineAreQuotedAndEscaped() {
        let log = AccessLog(file: .standardOutput, format: .text, includesQuery: true)
        let line = String(decoding: log.line(for: Self.exchange(path: "/a b\"c\\d\n status=500", query: "q=1",
                                                                route: nil), time: "t"), as: UTF8.self)
        #expect(line.contains(#"path="/a b\"c\\d\x0a status=500" query="q=1" route=- status=200"#), "\(line)")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func aJSONLineParsesWithTheSameFields() throws {
        let log = AccessLog(file: .standardOutput, format: .json, includesQuery: true)
        let bytes = log.line(for: Self.exchange(path: "/a\"\u{1}\u{e9}", query: "q=1"), time: "t")
        #expect(bytes.last == 0x0A)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes.dropLast())) as? [String: Any])
        #expect(object["path"] as? String == "/a\"\u{1}\u{e9}")
        #expect(object["query"] as? String == "q=1")
        #expect((object["status"] as? NSNumber)?.intValue == 200)
        #expect((object["duration_ms"] as? NSNumber)?.doubleValue == 3.214)
        #expect(object["route"] as? String == "/notes/:id")
    }

    @Test func aSaneRequestIDIsKeptAnythingElseReplaced() {
        #expect(RequestID.accepted("f3a9c0de-12:ab/x@y+z=") == "f3a9c0de-12:ab/x@y+z=")
        #expect(RequestID.accepted(String(repeating: "a", count: 64)) != nil)
        for bad in ["", "has space", "quote\"", "new\nline", String(repeating: "a", count: 65), "caf\u{e9}"] {
            #expect(RequestID.accepted(bad) == nil, "\(bad)")
        }
        let made = (0..<1000).map { _ in RequestID.make() }
        #expect(Set(made).count == 1000)
        #expect(made.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) && $0 == $0.lowercased() })
        #expect(Set(made.map { $0.prefix(16) }).count == 1, "the process's half is the same in every id")
        for (header, expected) in [("from-nginx", "from-nginx"), ("bad id", nil)] {
            let environ = CGIEnvironment(["HTTP_X_REQUEST_ID": header])
            let id = RequestID.of(RequestLine(environ), in: environ)
            #expect(expected.map { id == $0 } ?? (id.count == 32), "\(header): \(id)")
        }
    }

    /// The host's log handler keeps the request id apart from its other
    /// metadata (a cheaper set on every request); whichever way it is set or
    /// read, it is metadata like any other.
    @Test func theRequestIDIsMetadataLikeAnyOther() {
        var handler = HostLogHandler(label: "test", format: .text)
        handler[metadataKey: "request_id"] = "r1"
        handler[metadataKey: "worker"] = "7"
        #expect(handler.metadata == ["request_id": "r1", "worker": "7"])
        #expect(handler[metadataKey: "request_id"] == "r1" && handler[metadataKey: "worker"] == "7")
        handler.metadata = ["request_id": "r2", "trace_id": "t"]
        #expect(handler[metadataKey: "request_id"] == "r2" && handler[metadataKey: "worker"] == nil)
        handler[metadataKey: "request_id"] = nil
        #expect(handler.metadata == ["trace_id": "t"])
        var logger = Logger(label: "test") { _ in handler }
        logger[metadataKey: "request_id"] = "r3"
        #expect(logger[metadataKey: "request_id"] == "r3" && logger[metadataKey: "trace_id"] == "t")
    }

    /// A path for a log file of this test's own, in the temporary directory.
    static func scratchFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("gimlet-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Lines wait in their thread's batch until it reaches 32 KiB, a flush
    /// (the flusher, SIGUSR1) or the stop; each batch is whole lines, in order.
    @Test func linesAreWrittenInBatchesOfWholeLines() throws {
        let path = Self.scratchFile("batches")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = AccessLog(file: try LogFile(path: path, purpose: "access log"), format: .text, includesQuery: false,
                            threads: 2, flushEvery: .seconds(3600))
        log.record(Self.exchange(path: "/first"), worker: 0)
        log.record(Self.exchange(path: "/other-thread"), worker: 1)
        #expect(Self.lines(path).isEmpty, "nothing is written before a batch is full or flushed")
        // A thread past the batches (or none configured) writes at once.
        log.record(Self.exchange(path: "/unbatched"), worker: 2)
        #expect(Self.lines(path).count == 1 && Self.lines(path)[0].contains("path=/unbatched"))
        // Thread 0 fills its batch: written at once, whole lines, in order.
        var count = 1
        while Self.lines(path).count == 1 {
            log.record(Self.exchange(path: "/fill/\(count)"), worker: 0)
            count += 1
            #expect(count < 1000, "a 32 KiB batch was never written")
            if count >= 1000 { return }
        }
        let written = Self.lines(path).dropFirst()
        #expect(written.first?.contains("path=/first ") == true && written.count == count)
        #expect(written.allSatisfy { $0.hasPrefix("time=") && $0.hasSuffix("backend_round_trips=1") })
        #expect(written.enumerated().dropFirst().allSatisfy { $0.element.contains("path=/fill/\($0.offset) ") })
        #expect(!Self.lines(path).contains { $0.contains("/other-thread") }, "thread 1's batch waits")
        log.flush()
        #expect(Self.lines(path).last?.contains("path=/other-thread") == true)
        // After close (the stop), lines are written at once.
        log.close()
        log.record(Self.exchange(path: "/after-close"), worker: 0)
        #expect(Self.lines(path).last?.contains("path=/after-close") == true)
    }

    /// A line built in its thread's batch (after the lines before it, with
    /// the time's second made once) is the documented line, in both formats.
    @Test(arguments: [LogFormat.text, .json])
    func aBatchedLineIsTheDocumentedOne(format: LogFormat) throws {
        let path = Self.scratchFile("batched-\(format)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = AccessLog(file: try LogFile(path: path, purpose: "access log"), format: format, includesQuery: true,
                            threads: 1, flushEvery: .seconds(3600))
        let exchanges = [Self.exchange(path: "/notes/7", query: "a=1"), Self.exchange(path: "/two \"quoted\"", route: nil)]
        for exchange in exchanges { log.record(exchange, worker: 0) }
        log.close()
        let lines = Self.lines(path)
        try #require(lines.count == 2, "\(lines)")
        let stamp = /(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z/
        for (line, exchange) in zip(lines, exchanges) {
            let time = try #require(line.firstMatch(of: stamp), "\(line)")
            #expect(line == String(decoding: log.line(for: exchange, time: String(time.output.0)).dropLast(), as: UTF8.self))
            let (year, month, day) = (Int(time.output.1) ?? 0, Int(time.output.2) ?? 0, Int(time.output.3) ?? 0)
            #expect(year >= 2026 && (1...12).contains(month) && (1...31).contains(day), "\(time.output.0)")
            if format == .json {
                #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any], "\(line)")
            }
        }
    }

    /// With no more requests, the flusher writes a waiting line.
    @Test func theFlusherWritesAWaitingLine() throws {
        let path = Self.scratchFile("flusher")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = AccessLog(file: try LogFile(path: path, purpose: "access log"), format: .text, includesQuery: false,
                            threads: 1, flushEvery: .milliseconds(20))
        defer { log.close() }
        log.record(Self.exchange(path: "/waiting"), worker: 0)
        let deadline = ContinuousClock.now + .seconds(10)
        while Self.lines(path).isEmpty, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(Self.lines(path).first?.contains("path=/waiting") == true)
    }
}
