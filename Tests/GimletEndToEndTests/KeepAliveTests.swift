import Foundation
import Testing

/// FastCGI connections that nginx keeps open (`keepalive` in the upstream,
/// `fastcgi_keep_conn on`), the recipe of deploy/nginx/gimlet-upstream.conf.
/// A kept connection must wait for its next request without holding a
/// worker thread, or connections nginx opens meanwhile wait in the backlog.
@Suite(.serialized) struct KeepAlive {
    /// session-lab on TCP behind the upstream recipe.
    struct Setup {
        let host: ManagedProcess
        let recipe: UpstreamRecipe

        init(threads: Int?, arguments extra: (TemporaryDirectory) -> [String] = { _ in [] }) throws {
            let directory = try TemporaryDirectory("gimlet-keepalive")
            let port = try freeLoopbackPort()
            var arguments = ["--fastcgi", "127.0.0.1:\(port)", "--secret", SessionLabBehindNginx.secret] + extra(directory)
            if let threads { arguments += ["--threads", String(threads)] }
            host = try ManagedProcess("session-lab", executable: try Repository.binary("session-lab"),
                                      arguments: arguments, outputPath: directory.file("host.log"))
            guard waitUntil(seconds: 10, { canConnect(port: port) }) else {
                throw SetupError("session-lab did not listen: \(host.output)")
            }
            recipe = try UpstreamRecipe(ports: [port], directory: directory)
        }
    }

    /// With one worker thread: a request on a kept connection, then a slow
    /// request, and while it runs another one, on a second connection nginx
    /// opens because the first is busy. Before, the thread went back to
    /// wait on its kept connection alone, and the second connection's
    /// request waited until nginx reused or closed the first (a minute).
    @Test func aKeptConnectionDoesNotHoldTheOnlyThread() throws {
        let setup = try Setup(threads: 1)
        defer { setup.host.stop() }
        let client = setup.recipe.client()
        #expect(try client.get("/hello").status == 200)
        let slow = Handoff<Result<HTTPResult, any Error>>()
        Thread { slow.put(Result { try client.get("/async/slow-set/k/v") }) }.start()
        // Time for the slow request to reach the app first; were it late, the
        // test would pass without proving anything, never fail wrongly.
        Thread.sleep(forTimeInterval: 0.05)
        var quick = HTTPClient(baseURL: setup.recipe.baseURL, scratch: setup.recipe.directory, insecure: true)
        quick.maxTime = 5
        let answer = try quick.get("/hello")
        #expect(answer.status == 200, "the second connection was served: \(answer.text)")
        #expect(try slow.take(seconds: 30)?.get().status == 200)
        // And again, now that nginx holds two kept connections.
        for _ in 0..<4 { #expect(try quick.get("/hello").status == 200) }
        #expect(setup.host.isRunning)
    }

    /// The recipe under load at the default thread count: every answer a
    /// 200, no socket errors, with far more connections than threads.
    @Test func theRecipeUnderLoadAnswersEveryRequest() throws {
        let setup = try Setup(threads: nil)
        defer { setup.host.stop() }
        let wrk = Wrk(scratch: setup.recipe.directory)
        let hello = try wrk.run(setup.recipe.baseURL + "/hello", seconds: 3, connections: 16)
        #expect(hello.requests > 1000, "\(hello)")
        #expect(hello.failures == 0, "\(hello)")
        #expect(hello.socketErrors.isEmpty, "\(hello)")
        // Session writes too, each wrk connection its own session.
        let writes = try wrk.run(setup.recipe.baseURL + "/set/k/v", seconds: 3, connections: 32)
        #expect(writes.failures == 0, "\(writes)")
        #expect(writes.socketErrors.isEmpty, "\(writes)")
        #expect(setup.host.isRunning)
    }

    /// Bodies of 32 KiB and more are framed by the transport itself, in
    /// 32 KiB records written past libfcgi's 8 KiB buffer: on a connection
    /// nginx keeps, each arrives whole, in order after its headers, and the
    /// same connection (one worker thread) serves the next request.
    @Test func largeBodiesOnAKeptConnection() throws {
        let setup = try Setup(threads: 1) { ["--downloads", $0.file("downloads")] }
        defer { setup.host.stop() }
        let client = setup.recipe.client()
        for size in [32 * 1024 - 1, 32 * 1024, 40_000, (1 << 20) + 1, 5 * 32 * 1024] {
            let answer = try client.get("/download/\(size)")
            let pattern = (0..<size).map { UInt8($0 % 251) }
            #expect(answer.status == 200 && answer.body == pattern, "\(size) B: \(answer.status), \(answer.body.count) B")
            #expect(try client.get("/hello").status == 200)
        }
        let range = try client.get("/download/\(1 << 20)", headers: ["Range": "bytes=65530-"])
        #expect(range.status == 206 && range.body.count == (1 << 20) - 65530)
        #expect(setup.host.isRunning)
    }
}
