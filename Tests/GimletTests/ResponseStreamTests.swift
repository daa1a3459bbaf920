import Foundation
import GimletHTTP
import GimletTesting
import Synchronization
import Testing

/// Streaming responses and server-sent events through the exchange
/// (``TestClient`` runs the producer to its end), and the events' format.
@Suite struct StreamingResponses {
    @Test func aStreamAndAnEventStreamReachTheClientWhole() throws {
        var router = Router()
        router.get("/csv") { _ in
            .stream(contentType: "text/csv") { writer in
                for row in 1...3 { try await writer.write("\(row),\(row * row)\n") }
            }
        }
        router.get("/events") { request in
            let after = Int(request.lastEventID ?? "") ?? 0
            return .events(retry: .milliseconds(2500)) { events in
                for id in (after + 1)...3 { try await events.send(data: "n\(id)", event: "tick", id: String(id)) }
                try await events.comment("done")
            }
        }
        let client = TestClient(router)
        let csv = client.get("/csv")
        #expect(csv.status == 200 && csv.text == "1,1\n2,4\n3,9\n")
        #expect(csv.header("Content-Length") == nil, "a stream's length is not known")
        #expect(csv.header("X-Accel-Buffering") == "no")
        let events = client.get("/events", headers: ["Last-Event-ID": "1"])
        #expect(events.header("Content-Type") == "text/event-stream; charset=utf-8" && events.header("Cache-Control") == "no-cache")
        #expect(events.text == "retry: 2500\n\nevent: tick\nid: 2\ndata: n2\n\nevent: tick\nid: 3\ndata: n3\n\n: done\n\n")
        let head = client.request("HEAD", "/csv")
        #expect(head.status == 200 && head.response.body.isEmpty, "HEAD: the headers, no producer run")
    }

    @Test func anEventsFieldsCannotBreakOutOfTheirLines() {
        let event = ServerSentEvent(data: "line 1\r\nline 2\rline 3\nline 4", event: "a\nid: forged", id: "7\r\ndata: x")
        #expect(String(decoding: event.bytes, as: UTF8.self)
            == "event: aid: forged\nid: 7data: x\ndata: line 1\ndata: line 2\ndata: line 3\ndata: line 4\n\n")
        #expect(String(decoding: ServerSentEvent(data: "").bytes, as: UTF8.self) == "data: \n\n")
    }

    @Test func aProducerThatFailsEndsTheResponseThere() {
        var router = Router()
        router.get("/half") { _ in
            .stream(contentType: "text/plain") { writer in
                try await writer.write("first half\n")
                throw CancellationError()
            }
        }
        #expect(TestClient(router).get("/half").text == "first half\n")
    }
}
