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

    /// Records entering and leaving.
    struct SyncTrace: Middleware {
        let name: String
        let log: Log
        func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
            log.add(name + ">")
            defer { log.add("<" + name) }
            return try next(request)
        }
    }

    struct AsyncTrace: AsyncMiddleware {
        let name: String
        let log: Log
        func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
            await Task.yield()
            log.add(name + ">")
            // A child task running while the rest of the chain runs (synchronous
            // middleware included) must not stall it.
            async let side = AsyncRoutes.fromAnotherThread(name)
            let response = try await next(request)
            log.add("<" + name + (await side == name ? "" : "?"))
            return response
        }
    }

    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// Runs `body` on a thread of its own, failing instead of hanging if it deadlocks.
    func withinTenSeconds(_ body: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread { body(); done.signal() }.start()
        #expect(done.wait(timeout: .now() + 10) == .success, "the chain did not finish: a deadlock")
    }

    @Test func syncAndAsyncMiddlewareMixInOrder() {
        let log = Log()
        var router = Router()
        router.use(SyncTrace(name: "a", log: log))
        router.use(AsyncTrace(name: "b", log: log))
        router.use(SyncTrace(name: "c", log: log))
        router.use(AsyncTrace(name: "d", log: log))
        router.get("/sync") { _ in log.add("sync handler"); return .text("s") }
        router.get("/async") { _ in
            _ = await Self.fromAnotherThread("x")
            log.add("async handler")
            return .text("a")
        }
        router.get("/teapot") { _ in throw HTTPError(.conflict, "no") }
        let frozen = router
        let texts = Mutex<[String]>([])
        withinTenSeconds {
            for path in ["/sync", "/async"] {
                let response = frozen.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": path]))
                texts.withLock { $0.append(String(decoding: response.body, as: UTF8.self)) }
            }
        }
        #expect(texts.withLock { $0 } == ["s", "a"])
        #expect(log.all == ["a>", "b>", "c>", "d>", "sync handler", "<d", "<c", "<b", "<a",
                            "a>", "b>", "c>", "d>", "async handler", "<d", "<c", "<b", "<a"])

        let statuses = Mutex<[HTTPStatus]>([])
        withinTenSeconds {
            for (method, path) in [("GET", "/teapot"), ("GET", "/nowhere"), ("HEAD", "/async"), ("POST", "/async")] {
                let response = frozen.respond(to: Request(environ: ["REQUEST_METHOD": method, "REQUEST_URI": path]))
                statuses.withLock { $0.append(response.status) }
            }
        }
        #expect(statuses.withLock { $0 } == [.conflict, .notFound, .ok, .methodNotAllowed],
                "HTTPErrors and 404/405 reach async middleware as responses")
    }

    struct Refusing: AsyncMiddleware {
        func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
            if request.query["key"] != "open" { throw HTTPError(.forbidden, "no key") }
            return try await next(request)
        }
    }

    @Test func asyncMiddlewareMayAnswerByItself() {
        var router = Router()
        router.use(Refusing())
        router.get("/door") { _ in .text("in") }
        let frozen = router
        let statuses = Mutex<[HTTPStatus]>([])
        withinTenSeconds {
            for uri in ["/door", "/door?key=open"] {
                statuses.withLock { $0.append(frozen.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": uri])).status) }
            }
        }
        #expect(statuses.withLock { $0 } == [.forbidden, .ok])
    }

    /// The worker thread, and the executor a request ran on without
    /// keeping it alive. (`@unchecked Sendable`: written by the worker
    /// thread, read by it or after it ended.)
    final class Seen: @unchecked Sendable {
        var worker: pthread_t?
        weak var executor: WorkerThreadExecutor?
    }

    /// Runs `body` on a thread of its own, as a transport's worker, without
    /// blocking a thread of Swift's pool meanwhile (the late tasks below need one).
    static func onAWorkerThread<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// A worker thread runs its next async request on the same executor
    /// (making one per request was a tenth of what the bridge to an async
    /// handler costs), but never on one that something of an earlier request
    /// still holds: a ``WorkerThread`` kept past its request, or a task
    /// started with the executor's preference that is still running.
    @Test func aThreadKeepsItsExecutorUnlessSomethingOfAnEarlierRequestHoldsIt() async {
        let seen = Seen()
        let kept = Mutex<WorkerThread?>(nil)
        let late = Mutex<Task<Bool, Never>?>(nil)
        // What the late task waits for: the end of the requests below.
        let (requestsOver, endRequests) = AsyncStream<Void>.makeStream()
        var router = Router()
        router.get("/same") { _ in
            await Task.yield()   // a job through the executor's queue
            let same = seen.executor != nil && seen.executor === WorkerThreadExecutor.current
            seen.executor = WorkerThreadExecutor.current
            return .text(same ? "same" : "new")
        }
        router.get("/keep") { _ in
            await Task.yield()
            kept.withLock { $0 = WorkerThread.current }
            seen.executor = WorkerThreadExecutor.current
            return .text("kept")
        }
        router.get("/late") { _ in
            await Task.yield()
            guard let executor = WorkerThreadExecutor.current else { return .text("none") }
            seen.executor = executor
            late.withLock {
                $0 = Task(executorPreference: executor) {
                    for await _ in requestsOver {}
                    return seen.worker.map { Self.isThread($0) } ?? true
                }
            }
            return .text("started")
        }
        let frozen = router
        let answers = await Self.onAWorkerThread {
            seen.worker = pthread_self()
            return ["/same", "/same", "/same", "/keep", "/same", "/same", "/late", "/same", "/same"].map {
                String(decoding: frozen.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": $0])).body, as: UTF8.self)
            }
        }
        endRequests.finish()
        #expect(answers == ["new", "same", "same", "kept", "new", "same", "started", "new", "same"])
        // The kept handle runs nothing on the worker thread any more.
        let handle = kept.withLock { $0 }
        #expect(handle != nil)
        let ran = Mutex(false)
        let value: Void? = try? await handle?.run { ran.withLock { $0 = true } }
        #expect(value == nil && !ran.withLock { $0 })
        // The late task ended elsewhere: its executor was closed to it.
        let onTheWorker = await late.withLock { $0 }?.value
        #expect(onTheWorker == false)
    }
}
