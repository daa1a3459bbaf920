import Foundation
import Synchronization
import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// The session middleware around async middleware and async handlers: the
/// same I/O and failure semantics as with synchronous ones.
/// A shared session kept past its request, as a careless handler might.
enum Leaked {
    static let session = Mutex<SharedSession?>(nil)
}

@Suite struct AsyncSession {
    struct Awaiting: AsyncMiddleware {
        func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
            await Task.yield()
            var response = try await next(request)
            response.headers["X-Awaited"] = "1"
            return response
        }
    }

    func client(_ backend: RecordingBackend) throws -> TestClient {
        var router = Router()
        router.use(Awaiting())
        router.use(try SessionMiddleware(SessionConfiguration(secrets: ["async-session-secret-0123456"], backend: backend)))
        router.use(Awaiting())
        router.get("/count") { request in
            await Task.yield()
            let next = (try request.session.get("n")?.intValue ?? 0) + 1
            request.session["n"] = .int(next)
            return .text(String(next))
        }
        // The session from child tasks, and from an unstructured task that
        // hops to the worker thread: all on the handler's thread, one commit.
        router.get("/children") { request in
            let thread = pthread_self()
            let session = request.session.shared
            async let first: Bool = {
                try await session.set("a", .string("from async let"))
                return pthread_equal(pthread_self(), thread) != 0
            }()
            let counted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        try await session.withSession { session in
                            let next = (try session.get("n")?.intValue ?? 0) + 1
                            try session.set("n", .int(next))
                        }
                        return pthread_equal(pthread_self(), thread) != 0
                    }
                }
                return try await group.reduce(true) { $0 && $1 }
            }
            let elsewhere = Task { try await session.get("a")?.text }
            let seen = try await elsewhere.value ?? "-"
            return .text("\(try await first && counted) \(seen) \(try await session.get("n")?.intValue ?? 0)")
        }
        router.get("/leak") { request in
            Leaked.session.withLock { $0 = request.session.shared }
            return .text("ok")
        }
        router.get("/taken-in-sync-code") { (request: Request) throws -> Response in
            Leaked.session.withLock { $0 = request.session.shared }
            return .text("ok")
        }
        router.get("/slow-write") { request in
            request.session["n"] = 99
            do { try await Task.sleep(for: .seconds(30)) } catch { return .text("cancelled") }
            return .text("slept")
        }
        router.get("/peek") { request in
            await Task.yield()
            return .text(request.session["n"]?.text ?? "-")
        }
        return TestClient(router)
    }

    @Test func oneLoadOneCommitAndTheCookie() throws {
        let backend = RecordingBackend()
        let client = try client(backend)
        let first = client.get("/count")
        #expect(first.text == "1" && first.setCookie("gimlet-n") != nil)
        #expect(first.response.headers["X-Awaited"] == "1")
        backend.reset()
        #expect(client.get("/count").text == "2")
        #expect(backend.loads == 1 && backend.commits == 1)
        backend.reset()
        #expect(client.get("/peek").text == "2")
        #expect(backend.loads == 1 && backend.commits == 0, "a read writes nothing")
    }

    @Test func childTasksShareTheSessionOnTheWorkerThread() throws {
        let backend = RecordingBackend()
        let client = try client(backend)
        #expect(client.get("/count").text == "1")
        backend.reset()
        let answer = client.get("/children")
        #expect(answer.text == "true from async let 6", "every child on the handler's thread; five increments")
        #expect(backend.loads == 1 && backend.commits == 1, "one load, one commit for all the tasks")
        #expect(client.get("/peek").text == "6")
    }

    @Test func aSharedSessionUsedAfterItsRequestThrowsAtOnce() async throws {
        let client = try client(RecordingBackend())
        #expect(await client.get("/leak").text == "ok")
        let leaked = try #require(Leaked.session.withLock { $0 })
        await #expect(throws: SessionError.usedOutsideItsRequest) { try await leaked.get("n") }
        #expect(await client.get("/taken-in-sync-code").text == "ok")
        let untied = try #require(Leaked.session.withLock { $0 })
        await #expect(throws: SessionError.usedOutsideItsRequest) { try await untied.set("n", 1) }
    }

    /// The thread's next request must not take a kept shared session for
    /// its own: the worker thread keeps its executor from request to
    /// request, but not one that a kept session still holds.
    @Test func aSharedSessionKeptPastItsRequestIsRefusedInTheNextOnTheSameThread() throws {
        let kept = Mutex<SharedSession?>(nil)
        var router = Router()
        router.use(try SessionMiddleware(SessionConfiguration(secrets: ["async-session-secret-0123456"], backend: RecordingBackend())))
        router.get("/keep") { request in
            request.session["n"] = 1
            kept.withLock { $0 = request.session.shared }
            return .text("kept")
        }
        router.get("/use-kept") { _ in
            guard let session = kept.withLock({ $0 }) else { return .text("nothing kept") }
            do {
                try await session.set("n", 2)
                return .text("reached the earlier request's session")
            } catch let error as SessionError where error == .usedOutsideItsRequest {
                return .text("refused")
            }
        }
        let client = TestClient(router)
        #expect(client.get("/keep").text == "kept")
        #expect(client.get("/use-kept").text == "refused")
        #expect(client.get("/use-kept").text == "refused")
    }

    @Test func aRequestPastItsDeadlineIsCancelledAndStoresNothing() throws {
        let backend = RecordingBackend()
        let client = try client(backend)
        #expect(client.get("/count").text == "1")
        backend.reset()
        let request = Request(environ: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/slow-write",
            "HTTP_COOKIE": client.cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "),
        ])
        request.deadline = .now + .milliseconds(50)
        let response = client.responder.respond(to: request)
        #expect(response.status.code == 504 && request.cancellation == .deadlinePassed)
        #expect(response.headers.values(for: "Set-Cookie").isEmpty && backend.commits == 0,
                "the handler returned normally, yet nothing of the request is stored")
        #expect(client.get("/peek").text == "1")
    }

    @Test func anAsyncTestBodyAwaitsTheClient() async throws {
        let backend = RecordingBackend()
        let client = try client(backend)
        #expect(await client.get("/count").text == "1")
        #expect(await client.get("/children").text == "true from async let 6")
        #expect(await client.request("HEAD", "/peek").status == 200)
        #expect(await client.get("/peek").text == "6")
    }

    @Test func aBackendFailureIs503() throws {
        let backend = RecordingBackend()
        let client = try client(backend)
        #expect(client.get("/count").status == 200)
        backend.setFailing(true)
        #expect(client.get("/count").status == 503)
        backend.setFailing(false)
        #expect(client.get("/peek").text == "1", "nothing of the failed request stored")
    }
}
