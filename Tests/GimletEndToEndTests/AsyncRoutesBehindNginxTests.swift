import Foundation
import Testing

/// session-lab's async routes behind a real nginx, over FastCGI and SCGI.
@Suite(.serialized) struct AsyncRoutesBehindNginx {
    enum Transport: String, CaseIterable, CustomTestStringConvertible {
        case fastcgi, scgi
        var testDescription: String { rawValue }
    }

    @Test(arguments: Transport.allCases)
    func asyncHandlersUseTheSessionAsSyncOnesDo(transport: Transport) throws {
        let stack = try SessionLabBehindNginx.Stack(["--threads", "4"], scgi: transport == .scgi)
        #expect(try stack.client.get("/async/set/fruit/apple").text == "ok")
        #expect(try stack.client.get("/async/get/fruit").text == "apple")
        #expect(try stack.client.get("/get/fruit").text == "apple", "a sync route sees what an async one stored")
        #expect(try stack.client.get("/set/veg/leek").text == "ok")
        #expect(try stack.client.get("/async/get/veg").text == "leek")
        #expect(try stack.client.get("/async/get/nothing").status == 404)
        #expect(try stack.client.request("HEAD", "/async/get/fruit").status == 200, "HEAD on an async GET route")
        #expect(try stack.client.get("/async/crash").status == 500)
        // Child tasks (async let, a task group) change the session together.
        #expect(try stack.client.get("/async/children").text == "3")
        #expect(try stack.client.get("/async/children").text == "6")
        #expect(try stack.client.get("/flatten/marks").text == "child:child")
        #expect(try stack.client.get("/delete/counter").text == "ok")

        // Read-modify-write from async handlers: checked at commit, re-run on a conflict.
        let cookie = stack.cookieHeader
        for round in 0..<4 {
            let results = try stack.client.parallelGets(count: 16, connections: 16, headers: ["Cookie": cookie]) {
                "/async/counter?round=\(round)&n=\($0)"
            }
            #expect(results.allSatisfy { $0.status == 200 }, "\(Set(results.map(\.status)))")
        }
        let counted = try stack.client.get("/get/counter").text
        #expect(counted == "64", "lost increments: \(counted)")
        // Sync and async requests at once, on four threads.
        let mixed = try stack.client.parallelGets(count: 64, connections: 16, headers: ["Cookie": cookie]) {
            $0 % 2 == 0 ? "/async/get/fruit" : "/get/fruit"
        }
        #expect(mixed.allSatisfy { $0.status == 200 && $0.body == "apple" })
    }

    /// The client hangs up while the handler awaits: nginx closes the
    /// connection, the worker thread sees it, the handler's task is
    /// cancelled, nothing of the request is stored, and the one worker
    /// thread serves the next request.
    @Test(arguments: Transport.allCases)
    func aClientThatHangsUpCancelsTheHandler(transport: Transport) throws {
        let stack = try SessionLabBehindNginx.Stack(["--threads", "1"], scgi: transport == .scgi)
        #expect(try stack.client.get("/set/fruit/apple").text == "ok")
        let cookie = stack.cookieHeader
        for round in 1...3 {
            let hungUp = try runToCompletion(try Tool.curl(), [
                "-sS", "--max-time", "0.05", "-H", "Cookie: \(cookie)",
                stack.nginx.baseURL + "/async/slow-set/fruit/plum?round=\(round)",
            ])
            #expect(hungUp.status == 28, "curl gave up (timeout)")
            #expect(waitUntil(seconds: 5) { (try? stack.client.get("/async/cancelled").text) == "\(round)" },
                    "the handler saw its task cancelled")
        }
        #expect(try stack.client.get("/get/fruit").text == "apple", "nothing of the cancelled requests was stored")
        #expect(try stack.client.get("/hello").text == "hello")
        let logged = stack.app.output.components(separatedBy: "request cancelled").count - 1
        #expect(logged == 3, "one log line per cancelled request: \(stack.app.output)")
    }

    /// Async handlers hold their worker thread while they wait (that is
    /// the design: one request per thread), yet all finish, and a
    /// synchronous route is served in between.
    @Test(arguments: Transport.allCases)
    func manyWaitingAsyncRequestsAllFinish(transport: Transport) throws {
        let stack = try SessionLabBehindNginx.Stack(["--threads", "4"], scgi: transport == .scgi)
        let finished = Handoff<[(status: Int, body: String)]>()
        Thread {
            finished.put((try? stack.client.parallelGets(count: 64, connections: 64) { "/async/wait?n=\($0)" }) ?? [])
        }.start()
        // Synchronous requests while the async ones wait: each is answered.
        var helloes: [Int] = []
        var results: [(status: Int, body: String)]?
        while results == nil {
            helloes.append((try? stack.client.get("/hello").status) ?? 0)
            results = finished.take(seconds: 0.01)
        }
        #expect(helloes.allSatisfy { $0 == 200 }, "\(helloes)")
        let answered = try #require(results)
        #expect(answered.count == 64 && answered.allSatisfy { $0.status == 200 && $0.body == "waited" },
                "\(Set(answered.map(\.status)))")
    }
}
