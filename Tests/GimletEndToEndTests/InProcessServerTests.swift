import Dispatch
import Foundation
import Gimlet
import GimletFastCGI
import GimletHTTP
import Logging
import Synchronization
import Testing

/// A result handed from a helper thread to the test.
final class Handoff<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func put(_ newValue: Value) {
        value.withLock { $0 = newValue }
        ready.signal()
    }

    func take(seconds: Double) -> Value? {
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        return value.withLock { $0 }
    }
}

/// FastCGIServer in the test process, behind a real nginx.
@Suite(.serialized) struct InProcessServer {
    /// A running server with `router` (plus `GET /` → "up") and nginx in front,
    /// answering; `stopped` gets `true` once `run()` has returned.
    struct Running {
        let server: FastCGIServer
        let nginx: Nginx
        let client: HTTPClient
        let stopped: Handoff<Bool>
    }

    func start(_ router: Router, threads: Int, in directory: TemporaryDirectory) throws -> Running {
        var router = router
        router.get("/") { _ in .text("up") }
        let socket = directory.file("app.sock")
        let server = try FastCGIServer(
            configuration: FastCGIConfiguration(listen: .unix(path: socket), threads: threads, socketMode: 0o666),
            responder: router, logger: Logger(label: "test"))
        let stopped = Handoff<Bool>()
        Thread { server.run(); stopped.put(true) }.start()
        let nginx = try Nginx(socket: socket)
        let client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        #expect(waitUntil(seconds: 10) { (try? client.get("/").status) == 200 })
        return Running(server: server, nginx: nginx, client: client, stopped: stopped)
    }

    @Test func stopLetsTheRequestInFlightFinishThenRefusesNewOnes() throws {
        let directory = try TemporaryDirectory("gimlet-stop")
        let handlerStarted = DispatchSemaphore(value: 0)
        var router = Router()
        router.get("/slow") { _ in
            handlerStarted.signal()
            Thread.sleep(forTimeInterval: 1.5)  // the point: a request still in flight when stop is asked
            return .text("done slowly")
        }
        let running = try start(router, threads: 2, in: directory)
        let (server, client, stopped) = (running.server, running.client, running.stopped)
        defer { server.stop() }

        let slow = Handoff<HTTPResult?>()
        Thread { slow.put(try? client.get("/slow")) }.start()
        #expect(handlerStarted.wait(timeout: .now() + 10) == .success)
        server.stop()
        #expect(server.isStopping)
        #expect(stopped.take(seconds: 0.5) == nil, "run() must wait for the request in flight")

        let answer = try #require(slow.take(seconds: 10) ?? nil)
        #expect(answer.status == 200)
        #expect(answer.text == "done slowly")
        #expect(stopped.take(seconds: 10) == true, "run() returns once the in-flight request is done")
        #expect(try client.get("/").status == 502, "a stopped server accepts nothing new")
    }

    /// `request.session` without the session middleware once stopped the
    /// process (a precondition), with every request in flight.
    @Test func aSessionWithoutItsMiddlewareCostsOnlyThatRequest() throws {
        let directory = try TemporaryDirectory("gimlet-wiring")
        let handlerStarted = DispatchSemaphore(value: 0)
        var router = Router()
        router.get("/slow") { _ in
            handlerStarted.signal()
            Thread.sleep(forTimeInterval: 1)  // the point: a request in flight beside the miswired one
            return .text("done slowly")
        }
        router.get("/visit") { request in
            request.session["visits"] = 1
            return .text("counted")
        }
        let running = try start(router, threads: 2, in: directory)
        defer { running.server.stop() }

        let slow = Handoff<HTTPResult?>()
        Thread { slow.put(try? running.client.get("/slow")) }.start()
        #expect(handlerStarted.wait(timeout: .now() + 10) == .success)
        let visit = try running.client.get("/visit")
        #expect(visit.status == 500)
        #expect(visit.text == "Internal Server Error")
        let answer = try #require(slow.take(seconds: 10) ?? nil)
        #expect(answer.status == 200, "the request in flight is answered")
        #expect(try running.client.get("/").text == "up", "and the process goes on serving")
    }

    @Test func aClientThatGoesAwayDoesNotCostTheWorker() throws {
        let directory = try TemporaryDirectory("gimlet-abort")
        let written = DispatchSemaphore(value: 0)
        var router = Router()
        router.get("/big-and-late") { _ in
            Thread.sleep(forTimeInterval: 1.0)  // the point: the client has gone by the time the answer is written
            defer { written.signal() }
            return .bytes([UInt8](repeating: 0x61, count: 4 << 20), contentType: "text/plain")
        }
        // One thread: the worker that loses its client must be the one that serves next.
        let running = try start(router, threads: 1, in: directory)
        let (nginx, client) = (running.nginx, running.client)
        defer { running.server.stop() }

        let abandoned = try ManagedProcess(
            "curl", executable: try Tool.curl(),
            arguments: ["-s", "--max-time", "0.3", "-o", "/dev/null", nginx.baseURL + "/big-and-late"],
            outputPath: directory.file("curl.log"))
        #expect(abandoned.waitForExit(seconds: 10) != 0, "curl gives up before the answer")
        #expect(written.wait(timeout: .now() + 10) == .success)
        let after = try client.get("/")
        #expect(after.status == 200)
        #expect(after.text == "up")
    }

    /// On a unix socket a worker closes a finished connection at once; on TCP
    /// it keeps libfcgi's linger (shut down its side, wait for the peer's close).
    @Test(arguments: [true, false])
    func aFinishedConnectionIsClosedAtOnceOnAUnixSocket(unix: Bool) throws {
        let directory = try TemporaryDirectory("gimlet-linger")
        var router = Router()
        router.get("/x") { _ in .text("x") }
        let socket = directory.file("app.sock")
        let port = try freeLoopbackPort()
        let server = try FastCGIServer(
            configuration: FastCGIConfiguration(listen: unix ? .unix(path: socket) : .tcp(host: "127.0.0.1", port: port),
                                                threads: 1, socketMode: 0o666),
            responder: router, logger: Logger(label: "test"))
        let stopped = Handoff<Bool>()
        Thread { server.run(); stopped.put(true) }.start()
        defer {
            server.stop()
            _ = stopped.take(seconds: 10)
        }

        do {
            // Our side stays open, as nginx's does until it has read the response.
            let client = unix ? try RawClient(unixPath: socket) : try RawClient(port: port)
            client.send(fastCGIRequest([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/x")]))
            let response = client.readToEnd()
            #expect(String(decoding: response, as: UTF8.self).contains("Status: 200 OK"))
            #expect(response.count >= 16 && response[response.count - 16 + 1] == 3, "ends with FCGI_END_REQUEST")
            // The linger shuts down the server's side only and keeps the socket
            // open, waiting for ours to close: a write still goes through.
            let written = client.send([0])
            if unix {
                #expect(written == EPIPE, "the worker closed the connection instead of waiting")
            } else {
                #expect(written == 0, "on TCP the worker waits for the web server to close first")
            }
        }
    }
}
