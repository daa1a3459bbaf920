import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// Mistakes in how an app is put together cost the request that meets them,
/// never the process.
@Suite struct Wiring {
    @Test func aSessionWithoutItsMiddlewareIsA500ForThatRequestOnly() async throws {
        var router = Router()
        router.get("/visit") { request in
            request.session["visits"] = 1
            return .text("counted")
        }
        router.get("/async-visit") { request async throws -> Response in
            await Task.yield()
            _ = request.session["visits"]
            return .text("read")
        }
        router.get("/plain") { _ in .text("plain") }
        let client = TestClient(router)
        let visit = await client.get("/visit")
        #expect(visit.status == 500)
        #expect(visit.text == "Internal Server Error", "no internals in the body")
        #expect(visit.setCookies.isEmpty, "the throwaway session is not sent")
        #expect(await client.get("/async-visit").status == 500)
        #expect(await client.get("/plain").text == "plain")
    }
}
