import Foundation
import Testing

/// A span per request through swift-distributed-tracing (issue 31, item
/// 2, without the exporter): session-lab with its in-memory W3C tracer
/// (`GIMLET_LAB_TRACER=memory`, `GET /-/spans`) behind real nginx, which
/// passes the client's `traceparent` as the stock params' `HTTP_TRACEPARENT`.
@Suite(.serialized) struct TracingBehindNginx {
    typealias Stack = SessionLabBehindNginx.Stack

    func spans(_ stack: Stack) throws -> [[String: Any]] {
        try stack.client.get("/-/spans").text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    @Test func aRequestsSpanContinuesTheClientsTraceWithTheSessionsRoundTripsInside() throws {
        let logs = try TemporaryDirectory("gimlet-tracing")
        let accessLog = logs.file("access.log")
        let stack = try Stack(["--access-log", accessLog], environment: ["GIMLET_LAB_TRACER": "memory"])
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736", parent = "00f067aa0ba902b7"
        let headers = ["traceparent": "00-\(trace)-\(parent)-01"]
        #expect(try stack.client.get("/set/k/v?clientside=0", headers: headers).text == "ok")
        #expect(try stack.client.get("/get/k", headers: headers).text == "v")
        let mine = try spans(stack).filter { ($0["trace_id"] as? String) == trace }
        let servers = mine.filter { ($0["kind"] as? String) == "server" }
        #expect(servers.map { $0["name"] as? String } == ["GET /set/:key/:value", "GET /get/:key"], "\(mine)")
        #expect(servers.map { ($0["attributes"] as? [String: String])?["url.path"] } == ["/set/k/v", "/get/k"])
        for server in servers {
            #expect(server["parent_span_id"] as? String == parent, "the client's span is the parent: \(server)")
            let attributes = try #require(server["attributes"] as? [String: String])
            #expect(attributes["http.request.method"] == "GET", "\(attributes)")
            #expect(attributes["http.response.status_code"] == "200 (int)", "an integer, as OpenTelemetry says: \(attributes)")
            #expect(attributes["http.route"] == (server["name"] as? String)?.dropFirst(4).description, "\(attributes)")
        }
        // The write's commit and the read's load, each inside its request's span.
        let clients = mine.filter { ($0["kind"] as? String) == "client" }
        #expect(clients.compactMap { $0["name"] as? String }.sorted() == ["session commit", "session load"], "\(mine)")
        for client in clients {
            #expect(servers.contains { ($0["span_id"] as? String) == (client["parent_span_id"] as? String) }, "\(client)")
            #expect((client["attributes"] as? [String: String])?["db.system"] == "sqlite", "\(client)")
        }
        // An async handler: its session load, on the worker thread's task, is the request span's child too.
        let asyncTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
        #expect(try stack.client.get("/async/read/k", headers: ["traceparent": "00-\(asyncTrace)-\(parent)-01"]).text == "v")
        let asyncSpans = try spans(stack).filter { ($0["trace_id"] as? String) == asyncTrace }
        let asyncServer = try #require(asyncSpans.first { ($0["kind"] as? String) == "server" }, "\(asyncSpans)")
        #expect(asyncServer["name"] as? String == "GET /async/read/:key")
        #expect(asyncSpans.contains { ($0["name"] as? String) == "session load"
            && ($0["parent_span_id"] as? String) == (asyncServer["span_id"] as? String) }, "\(asyncSpans)")
        // A handler's error: a 500, an error span, and the log line carries the trace id.
        #expect(try stack.client.get("/async/crash", headers: headers).status == 500)
        let crash = try #require(try spans(stack).last { ($0["name"] as? String) == "GET /async/crash" })
        #expect(crash["error"] as? Bool == true && crash["trace_id"] as? String == trace, "\(crash)")
        let failed = stack.app.output.split(separator: "\n").first { $0.contains("handler failed") }
        #expect(failed?.contains("trace_id=\(trace)") == true, "\(stack.app.output)")
        // Without a traceparent, a trace of its own.
        #expect(try stack.client.get("/hello").status == 200)
        let fresh = try spans(stack).last { ($0["name"] as? String) == "GET /hello" }
        #expect(fresh.map { ($0["trace_id"] as? String) != trace && ($0["parent_span_id"] as? String) == "" } == true)
        // The trace id in the access log, beside the request id.
        #expect(waitUntil(seconds: 5) { AccessLogBehindNginx.lines(accessLog).contains { $0.contains("path=/get/k") } })
        let line = try #require(AccessLogBehindNginx.lines(accessLog).first { $0.contains("path=/get/k") })
        #expect(try AccessLogBehindNginx.fields(line, json: false)["trace_id"] == trace, "\(line)")
    }

    @Test func withoutATracerNoSpanAndNoTraceID() throws {
        let logs = try TemporaryDirectory("gimlet-tracing-off")
        let accessLog = logs.file("access.log")
        let stack = try Stack(["--access-log", accessLog])
        #expect(try stack.client.get("/hello", headers: ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]).status == 200)
        #expect(try stack.client.get("/-/spans").status == 404)
        #expect(waitUntil(seconds: 5) { AccessLogBehindNginx.lines(accessLog).contains { $0.contains("path=/hello") } })
        #expect(!AccessLogBehindNginx.lines(accessLog).contains { $0.contains("trace_id") })
    }
}
