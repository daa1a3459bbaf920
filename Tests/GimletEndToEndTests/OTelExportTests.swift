import Foundation
import Testing

/// Traces exported to a real OTLP receiver (issue 31, item 2's exporter):
/// `examples/otel` (`traced`, swift-otel over OTLP/HTTP) behind real nginx
/// and Apache, sending to Arize Phoenix. Its own package and receiver:
/// `make test-otel` builds both and runs this suite; `make test-e2e` skips it.
@Suite(.serialized) struct OTelExport {
    /// traced (its own package's build) serving `socket`, exporting to `receiver`.
    static func traced(_ directory: TemporaryDirectory, receiver: OTLPReceiver, socket: String,
                       exportEvery milliseconds: Int, arguments: [String] = []) throws -> ManagedProcess {
        let binaries = ProcessInfo.processInfo.environment["GIMLET_OTEL_BIN_DIR"]
            ?? Repository.root.appendingPathComponent("examples/otel/.build/debug").path
        let binary = binaries + "/traced"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw SetupError("\(binary) is missing: run `swift build --package-path examples/otel` (make test-otel does)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        environment["OTEL_BSP_SCHEDULE_DELAY"] = "\(milliseconds)"
        environment["GIMLET_SECRET"] = SessionLabBehindNginx.secret
        environment["GIMLET_DATA_DIR"] = directory.file("data")
        return try ManagedProcess(
            "traced", executable: binary,
            arguments: ["--fastcgi", "unix:" + socket, "--socket-mode", "666", "--threads", "4"] + arguments,
            outputPath: directory.file("traced.log"), environment: environment)
    }

    enum Front: String, CaseIterable { case nginx, apache }

    /// Waits until the receiver holds at least `count` spans of `trace`.
    static func spans(_ receiver: OTLPReceiver, trace: String, count: Int) throws -> [OTLPReceiver.Span] {
        var spans: [OTLPReceiver.Span] = []
        _ = try waitUntil(seconds: 20) {
            spans = try receiver.spans(trace: trace)
            return spans.count >= count
        }
        return spans
    }

    /// A request's span continues the client's trace through nginx and
    /// through Apache, with its session round trips and the app's own span
    /// inside, exported over OTLP/HTTP by the service the host runs.
    @Test func requestsSpansReachTheCollectorThroughNginxAndApache() throws {
        let receiver = try OTLPReceiver()
        for (index, front) in Front.allCases.enumerated() {
            let directory = try TemporaryDirectory("gimlet-otel-\(front)")
            let socket = directory.file("traced.sock")
            let app = try Self.traced(directory, receiver: receiver, socket: socket, exportEvery: 100)
            defer { app.stop() }
            let baseURL: String
            let nginx = front == .nginx ? try Nginx(socket: socket, config: "gimlet.conf") : nil
            let apache = front == .apache ? try Apache(socket: socket, config: "gimlet-fcgi.conf") : nil
            defer { nginx?.process.stop(); apache?.process.stop() }
            baseURL = nginx?.baseURL ?? apache?.baseURL ?? ""
            var client = HTTPClient(baseURL: baseURL, scratch: directory)
            client.cookieJar = directory.file("jar")
            let probe = HTTPClient(baseURL: baseURL, scratch: directory)
            guard waitUntil(seconds: 10, { (try? probe.get("/report").status) == 200 }) else {
                throw SetupError("traced did not answer through \(front): \(app.output)")
            }
            let trace = "4bf92f3577b34da6a3ce929d0e0e473\(index)", parent = "00f067aa0ba902b7"
            let headers = ["traceparent": "00-\(trace)-\(parent)-01"]
            #expect(try client.get("/visit", headers: headers).text == "visits: 1")
            #expect(try client.get("/visit", headers: headers).text == "visits: 2")
            #expect(try client.get("/report", headers: headers).text == "report: 3 rows")
            // 3 server spans, the first visit's commit, the second's load and commit, the report's own span.
            let spans = try Self.spans(receiver, trace: trace, count: 7)
            // Phoenix keeps no span kind (TracingBehindNginx checks it): the server spans are the requests'.
            let servers = spans.filter { $0.name.hasPrefix("GET ") }
            #expect(servers.map(\.name).sorted() == ["GET /report", "GET /visit", "GET /visit"], "\(front): \(spans)")
            for server in servers {
                #expect(server.parentID == parent, "\(front): the client's span is the parent: \(server)")
                #expect(server.status == "UNSET", "\(front): a 200 leaves the status unset: \(server)")
                let attributes = server.attributes
                #expect(attributes["http.request.method"] as? String == "GET", "\(front): \(attributes)")
                #expect(attributes["http.response.status_code"] as? Int == 200, "\(front): \(attributes)")
                #expect(attributes["http.route"] as? String == String(server.name.dropFirst(4)), "\(front): \(attributes)")
                #expect(attributes["url.path"] as? String == String(server.name.dropFirst(4)), "\(front): \(attributes)")
            }
            let visits = Set(servers.filter { $0.name == "GET /visit" }.map(\.spanID))
            let sessions = spans.filter { $0.name.hasPrefix("session ") }
            #expect(sessions.map(\.name).sorted() == ["session commit", "session commit", "session load"], "\(front): \(spans)")
            for span in sessions {
                #expect(span.parentID.map(visits.contains) == true, "\(front): \(span)")
                #expect(span.attributes["db.system"] as? String == "sqlite", "\(front): \(span)")
            }
            let report = try #require(servers.first { $0.name == "GET /report" })
            let own = try #require(spans.first { $0.name == "render report" }, "\(front): \(spans)")
            #expect(own.parentID == report.spanID && own.attributes["report.rows"] as? Int == 3, "\(front): \(own)")
            #expect(!app.output.contains("error"), "\(front): \(app.output)")
        }
    }

    /// Spans still queued when the host stops are sent: the exporter is a
    /// service the host ends after the last request, in every worker.
    @Test func aGracefulStopSendsTheSpansStillQueued() throws {
        let receiver = try OTLPReceiver()
        let directory = try TemporaryDirectory("gimlet-otel-stop")
        let socket = directory.file("traced.sock")
        // An export a minute: only the stop's flush can send these spans in time.
        let app = try Self.traced(directory, receiver: receiver, socket: socket, exportEvery: 60_000, arguments: ["--workers", "2"])
        defer { app.stop() }
        let nginx = try Nginx(socket: socket, config: "gimlet.conf")
        defer { nginx.process.stop() }
        let client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        guard waitUntil(seconds: 10, { (try? client.get("/report").status) == 200 }) else {
            throw SetupError("traced did not answer through nginx: \(app.output)")
        }
        let trace = "5bf92f3577b34da6a3ce929d0e0e4736"
        for _ in 0..<6 {
            #expect(try client.get("/report", headers: ["traceparent": "00-\(trace)-00f067aa0ba902b7-01"]).status == 200)
        }
        #expect(try receiver.spans(trace: trace).isEmpty, "nothing is sent before the stop")
        app.send(SIGTERM)
        #expect(app.waitForExit(seconds: 30) == 0, "\(app.output)")
        let spans = try Self.spans(receiver, trace: trace, count: 12)
        #expect(spans.filter { $0.name == "GET /report" }.count == 6, "\(spans)")
        #expect(spans.filter { $0.name == "render report" }.count == 6, "\(spans)")
    }
}
