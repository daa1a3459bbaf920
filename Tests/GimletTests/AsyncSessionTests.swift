import Foundation
import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// The session middleware around async middleware and async handlers: the
/// same I/O and failure semantics as with synchronous ones.
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
