import Foundation
import Synchronization
import Testing
@testable import GimletHTTP

/// Async route handlers: same results as synchronous ones, run on the
/// worker thread that received the request.
@Suite struct AsyncRoutes {
    func request(_ method: String, _ uri: String) -> Request {
        Request(environ: ["REQUEST_METHOD": method, "REQUEST_URI": uri])
    }

    func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    /// A value a callback on another thread hands back, as a C library's or
    /// a client library's completion handler would.
    static func fromAnotherThread(_ value: String) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(5)) { continuation.resume(returning: value) }
        }
    }

    /// Whether the current thread is `thread`.
    static func isThread(_ thread: pthread_t) -> Bool { pthread_equal(pthread_self(), thread) != 0 }

    var router: Router {
        var router = Router()
        router.get("/sync") { _ in .text("sync") }
        router.get("/async/:name") { request async throws -> Response in
            await Task.yield()
            return .text("hello, " + (request.parameters["name"] ?? ""))
        }
        router.post("/async") { request in
            let echoed = await Self.fromAnotherThread(request.bodyText ?? "")
            return .text(echoed)
        }
        router.get("/async-fail") { _ in
            try await Task.sleep(for: .milliseconds(1))
            throw HTTPError(.conflict, "busy")
        }
        router.get("/async-crash") { _ in
            try await Task.sleep(for: .milliseconds(1))
            struct Broken: Error {}
            throw Broken()
        }
        return router
    }

    @Test func asyncAndSyncRoutesAnswerAlike() {
        let router = router
        #expect(body(router.respond(to: request("GET", "/sync"))) == "sync")
        #expect(body(router.respond(to: request("GET", "/async/frodo"))) == "hello, frodo")
        let posted = Request(environ: ["REQUEST_METHOD": "POST", "REQUEST_URI": "/async"], body: Array("ring".utf8))
        #expect(body(router.respond(to: posted)) == "ring", "resumed from another thread")
        let head = router.respond(to: request("HEAD", "/async/sam"))
        #expect(head.status == .ok && body(head) == "hello, sam", "HEAD runs the async GET handler")
    }

    @Test func asyncErrorsBecomeResponsesAsSyncOnesDo() {
        let router = router
        let conflict = router.respond(to: request("GET", "/async-fail"))
        #expect(conflict.status == .conflict && body(conflict).contains("busy"))
        let crash = router.respond(to: request("GET", "/async-crash"))
        #expect(crash.status == .internalServerError)
        #expect(router.respond(to: request("PUT", "/async/x")).status == .methodNotAllowed)
    }

    /// The start, the code after each await (a sleep, a continuation resumed
    /// on another thread) and child tasks all run on the calling thread.
    @Test func everyPartRunsOnTheWorkerThread() {
        let worker = pthread_self()
        let places = Mutex<[String: Bool]>([:])
        var router = Router()
        router.get("/where") { _ in
            places.withLock { $0["start"] = Self.isThread(worker) }
            try await Task.sleep(for: .milliseconds(2))
            places.withLock { $0["after sleep"] = Self.isThread(worker) }
            _ = await Self.fromAnotherThread("x")
            places.withLock { $0["after continuation"] = Self.isThread(worker) }
            async let child = Self.isThread(worker)
            let inChild = await child
            let inGroup = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { Self.isThread(worker) } }
                return await group.reduce(true) { $0 && $1 }
            }
            places.withLock { $0["async let"] = inChild; $0["task group"] = inGroup }
            return .text("ok")
        }
        #expect(body(router.respond(to: request("GET", "/where"))) == "ok")
        #expect(places.withLock { $0 } == ["start": true, "after sleep": true, "after continuation": true,
                                            "async let": true, "task group": true])
    }

    /// Worker threads running async handlers at once do not wait for each
    /// other. (Threads of our own, as the transports' workers are: Dispatch's
    /// own threads, blocked here, would starve the queue that resumes the
    /// continuations until Dispatch adds threads.)
    @Test func concurrentAsyncRequestsOnSeveralThreads() {
        let router = router
        let answers = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        for index in 0..<16 {
            Thread {
                let request = Request(environ: ["REQUEST_METHOD": "POST", "REQUEST_URI": "/async"], body: Array("n\(index)".utf8))
                let text = String(decoding: router.respond(to: request).body, as: UTF8.self)
                answers.withLock { $0.append(text) }
                done.signal()
            }.start()
        }
        for _ in 0..<16 { done.wait() }
        #expect(Set(answers.withLock { $0 }) == Set((0..<16).map { "n\($0)" }))
    }
}
