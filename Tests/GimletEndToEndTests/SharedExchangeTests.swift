import Foundation
import Gimlet
import GimletHTTP
import GimletTesting
import SessionLabApp
import Synchronization
import Testing

/// One test body, three reaches: in process (`TestClient`), and live behind
/// nginx over FastCGI and over SCGI. What the transports answer by
/// themselves (the body limit, `HEAD`, an unsafe header) is the same in all
/// three, because all three run the one exchange.
@Suite(.serialized) struct SharedExchange {
    /// `HEAD` gets the headers a `GET` would, the length included, and no
    /// body. In process the body used to come back.
    @Test(arguments: Reach.allCases)
    func headGetsTheHeadersWithoutTheBody(reach: Reach) throws {
        var router = Router()
        router.get("/page") { _ in .text("ten bytes!") }
        try withApp(router, reach: reach) { client in
            let head = try client.request("HEAD", "/page", body: nil, headers: [:])
            #expect(head.status == 200)
            #expect(head.body.isEmpty, "\(head.text)")
            #expect(head.header("Content-Length") == "10")
            #expect(try client.get("/page").text == "ten bytes!")
        }
    }

    /// A header value with CR LF would smuggle headers into the answer: the
    /// app's response is replaced by a 500. In process it used to pass.
    @Test(arguments: Reach.allCases)
    func aHeaderThatWouldSplitTheBlockIsA500(reach: Reach) throws {
        var router = Router()
        router.get("/evil") { request in
            var response = Response.text("x")
            response.headers["X-Next"] = request.query["next"] ?? ""
            return response
        }
        try withApp(router, reach: reach) { client in
            let answer = try client.get("/evil?next=a%0D%0ASet-Cookie:%20stolen=1")
            #expect(answer.status == 500)
            #expect(answer.setCookie("stolen") == nil)
            #expect(try client.get("/evil?next=fine").status == 200)
        }
    }

    /// A body over the limit is refused with 413 before the handler runs;
    /// one at the limit reaches it whole.
    @Test(arguments: Reach.allCases)
    func aBodyOverTheLimitIs413WithoutRunningTheHandler(reach: Reach) throws {
        let handled = Atomic<Int>(0)
        var router = Router()
        router.post("/echo") { request in
            handled.add(1, ordering: .relaxed)
            return .text("\(request.body.count ?? -1) bytes")
        }
        try withApp(router, reach: reach, maxBodyBytes: 1000) { client in
            let over = try client.request("POST", "/echo", body: [UInt8](repeating: 65, count: 1001), headers: [:])
            #expect(over.status == 413)
            #expect(handled.load(ordering: .relaxed) == 0)
            let at = try client.request("POST", "/echo", body: [UInt8](repeating: 65, count: 1000), headers: [:])
            #expect(at.status == 200 && at.text == "1000 bytes")
        }
    }

    /// The session contract's first steps (moved here from SessionBehaviour):
    /// the jar carries the cookies, whichever the reach.
    @Test(arguments: Reach.allCases)
    func setGetHasDelete(reach: Reach) throws {
        let configuration = try SessionConfiguration(secrets: ["shared-exchange-secret-0123456789"],
                                                     backend: MemoryBackend())
        try withApp(try SessionLabApp.router(configuration), reach: reach) { lab in
            #expect(try lab.get("/get/foo").status == 404)
            #expect(try lab.get("/get/foo").text == "key foo not found")
            #expect(try lab.get("/has/foo").text == "false")
            #expect(try lab.get("/set/foo/bar").text == "ok")
            #expect(try lab.get("/get/foo").text == "bar")
            #expect(try lab.get("/has/foo").text == "true")
            #expect(try lab.get("/delete/foo").text == "ok")
            #expect(try lab.get("/get/foo").status == 404)
            #expect(try lab.get("/delete/foo").status == 404)
            let permanent = try lab.get("/set/a/1?permanent=1&clientside=0")
            let cookie = try #require(permanent.setCookie("gimlet-p"))
            #expect(cookie.contains("; Max-Age=34560000") && cookie.contains("; HttpOnly"))
            #expect(try lab.get("/get/a").text == "1")
        }
    }
}
