import Foundation
import GimletHTTP
import GimletSCGI
import GimletTransport
import Logging
import Testing

/// SCGIServer in-process, one worker, 300 ms timeout: hostile connections
/// cost a closed connection, never the worker.
@Suite(.serialized) struct SCGIConnections {
    final class Server: @unchecked Sendable {
        // @unchecked: immutable after init.
        let port: Int
        let server: SCGIServer

        init() throws {
            port = try freeLoopbackPort()
            var router = Router()
            router.get("/") { _ in .text("up") }
            router.post("/echo") { .bytes(try $0.body.collect(upTo: 1000), contentType: "application/octet-stream") }
            server = try SCGIServer(
                configuration: SCGIConfiguration(listen: .tcp(host: "127.0.0.1", port: port), threads: 1,
                                                 maxBodyBytes: 1000, maxHeaderBytes: 2048, timeoutMilliseconds: 300),
                responder: router, logger: Logger(label: "scgi-test"))
            let server = self.server
            Thread { server.run() }.start()
        }

        deinit { server.stop() }

        func get(_ uri: String) throws -> String {
            let client = try RawClient(port: port)
            client.send(scgiRequest([("REQUEST_METHOD", "GET"), ("REQUEST_URI", uri)]))
            return String(decoding: client.readToEnd(), as: UTF8.self)
        }
    }

    @Test func aGoodRequest() throws {
        let server = try Server()
        let response = try server.get("/")
        #expect(response.hasPrefix("Status: 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\nup"))
        let client = try RawClient(port: server.port)
        client.send(scgiRequest([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo")], body: Array("ping".utf8)))
        #expect(String(decoding: client.readToEnd(), as: UTF8.self).hasSuffix("\r\n\r\nping"))
    }

    @Test(arguments: ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "5:ab", "99999:", "3:abc,", "x"])
    func garbageIsClosedWithoutAnAnswer(garbage: String) throws {
        let server = try Server()
        let client = try RawClient(port: server.port)
        client.send(garbage)
        client.closeWrite()
        #expect(client.readToEnd().isEmpty)
        #expect(try server.get("/").hasSuffix("up"), "the worker still serves")
    }

    @Test func aStalledClientIsDroppedAfterTheTimeout() throws {
        let server = try Server()
        let staller = try RawClient(port: server.port)
        staller.send("40:CONTENT_LENGTH")  // and nothing more
        let start = ContinuousClock.now
        #expect(try server.get("/").hasSuffix("up"), "served once the staller timed out")
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(staller.readToEnd().isEmpty)
    }

    @Test func aBodyShorterThanAnnouncedOrAClientThatLeaves() throws {
        let server = try Server()
        let short = try RawClient(port: server.port)
        var request = scgiRequest([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo")], body: Array("0123456789".utf8))
        request.removeLast(4)
        short.send(request)
        short.closeWrite()
        #expect(short.readToEnd().isEmpty, "no answer to a truncated body")
        do {
            let leaver = try RawClient(port: server.port)
            leaver.send(Array(scgiRequest([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")]).prefix(10)))
        }
        #expect(try server.get("/").hasSuffix("up"))
    }

    @Test func anOversizedBodyGets413() throws {
        let server = try Server()
        let client = try RawClient(port: server.port)
        client.send(scgiRequest([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo")], body: [UInt8](repeating: 7, count: 1001)))
        let response = String(decoding: client.readToEnd(), as: UTF8.self)
        #expect(response.hasPrefix("Status: 413"))
        #expect(try server.get("/").hasSuffix("up"))
    }
}
