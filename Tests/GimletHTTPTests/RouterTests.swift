import Testing
@testable import GimletHTTP

@Suite struct Routing {
    func request(_ method: String, _ uri: String) -> Request {
        Request(environ: ["REQUEST_METHOD": method, "REQUEST_URI": uri])
    }

    func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    var router: Router {
        var router = Router()
        router.get("/") { _ in .text("root") }
        router.get("/hello/:name") { .text("hello, \($0.parameters["name"] ?? "")") }
        router.get("/hello/world") { _ in .text("literal wins") }
        router.post("/hello/:name") { _ in .text("posted") }
        router.get("/a/:x/c") { .text("param \($0.parameters["x"] ?? "")") }
        router.get("/a/b/d") { _ in .text("literal abd") }
        router.get("/files/*") { .text("files \($0.parameters["*"] ?? "")") }
        router.get("/users/:id/posts/:post") { .text("\($0.parameters["id"] ?? "")/\($0.parameters["post"] ?? "")") }
        router.delete("/items/:id") { _ in .text("deleted") }
        router.get("/fail") { _ in throw HTTPError(.conflict, "busy") }
        router.get("/crash") { _ in
            struct Secret: Error { let password = "hunter2" }
            throw Secret()
        }
        return router
    }

    @Test(arguments: [
        ("GET", "/", "root"),
        ("GET", "/hello/frodo", "hello, frodo"),
        ("GET", "/hello/world", "literal wins"),
        ("GET", "/hello/a%20b", "hello, a b"),
        ("GET", "/hello/a%2Fb", "hello, a/b"),
        ("GET", "/hello/%E2%9C%93", "hello, ✓"),
        ("GET", "/hello/frodo/", "hello, frodo"),
        ("GET", "//hello//frodo", "hello, frodo"),
        ("POST", "/hello/x", "posted"),
        ("GET", "/a/b/c", "param b"),
        ("GET", "/a/b/d", "literal abd"),
        ("GET", "/files/x/y/z.txt", "files x/y/z.txt"),
        ("GET", "/files", "files "),
        ("GET", "/users/7/posts/42", "7/42"),
        ("GET", "/hello/frodo?x=1", "hello, frodo"),
    ])
    func matches(method: String, uri: String, expected: String) {
        let response = router.respond(to: request(method, uri))
        #expect(response.status == .ok)
        #expect(body(response) == expected)
    }

    @Test func notFound() {
        #expect(router.respond(to: request("GET", "/nope")).status == .notFound)
        #expect(router.respond(to: request("GET", "/hello")).status == .notFound)
        #expect(router.respond(to: request("GET", "/hello/a/b")).status == .notFound)
    }

    @Test func methodNotAllowedListsAllow() {
        let response = router.respond(to: request("PUT", "/hello/x"))
        #expect(response.status == .methodNotAllowed)
        #expect(response.headers["Allow"] == "GET, HEAD, POST")
        let delete = router.respond(to: request("GET", "/items/3"))
        #expect(delete.status == .methodNotAllowed)
        #expect(delete.headers["Allow"] == "DELETE")
    }

    @Test func headIsServedByGet() {
        let response = router.respond(to: request("HEAD", "/hello/x"))
        #expect(response.status == .ok)
        #expect(body(response) == "hello, x")  // the transport drops the body, see cgiBytes(includeBody:)
    }

    @Test func errors() {
        let conflict = router.respond(to: request("GET", "/fail"))
        #expect(conflict.status == .conflict)
        #expect(body(conflict) == "busy")
        let crash = router.respond(to: request("GET", "/crash"))
        #expect(crash.status == .internalServerError)
        #expect(body(crash) == "Internal Server Error")
        #expect(!body(crash).contains("hunter2"))
    }

    @Test func malformedPathEncodingIs400() {
        #expect(router.respond(to: request("GET", "/hello/%FF")).status == .badRequest)
        #expect(router.respond(to: request("GET", "/hello/%zz")).status == .ok)
    }

    @Test func dotSegmentsAreNotResolved() {
        // nginx checks its locations against the normalized URI; resolving `..`
        // here could reach a route nginx meant to guard.
        #expect(router.respond(to: request("GET", "/files/../hello/x")).status == .ok)
        #expect(body(router.respond(to: request("GET", "/files/../hello/x"))) == "files ../hello/x")
        #expect(router.respond(to: request("GET", "/x/../hello/y")).status == .notFound)
    }

    @Test func invalidRoutesAreReportedByValidate() {
        var router = Router()
        router.get("/ok") { _ in .text("") }
        #expect(throws: Never.self) { try router.validate() }
        router.get("no-slash") { _ in .text("") }
        router.get("/a/*/b") { _ in .text("") }
        router.get("/a/:x/:x") { _ in .text("") }
        router.get("/ok") { _ in .text("") }
        let error = #expect(throws: RouterConfigurationError.self) { try router.validate() }
        #expect(error?.problems.count == 4)
    }

    @Test func middlewareWrapsEverythingInOrder() {
        struct Tag: Middleware {
            let name: String
            func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
                var response = try next(request)
                response.headers.add("X-Trace", name)
                return response
            }
        }
        struct Gate: Middleware {
            func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
                if request.query["deny"] != nil { throw HTTPError(.forbidden) }
                return try next(request)
            }
        }
        var router = self.router
        router.use(Tag(name: "outer"))
        router.use(Tag(name: "inner"))
        router.use(Gate())
        let found = router.respond(to: request("GET", "/"))
        #expect(found.headers.values(for: "X-Trace") == ["inner", "outer"])
        let missing = router.respond(to: request("GET", "/nope"))
        #expect(missing.status == .notFound)
        #expect(missing.headers.values(for: "X-Trace") == ["inner", "outer"])
        let denied = router.respond(to: request("GET", "/?deny"))
        #expect(denied.status == .forbidden)
        #expect(denied.headers.values(for: "X-Trace") == ["inner", "outer"])
    }

    @Test func unexpectedErrorsPassMiddlewareAsErrors() {
        struct Observe: Middleware {
            func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
                do { return try next(request) } catch {
                    throw HTTPError(.serviceUnavailable, "seen: \(error is HTTPError)")
                }
            }
        }
        var router = self.router
        router.use(Observe())
        #expect(router.respond(to: request("GET", "/fail")).status == .conflict)
        let crash = router.respond(to: request("GET", "/crash"))
        #expect(crash.status == .serviceUnavailable)
        #expect(body(crash) == "seen: false")
    }

    @Test func storageCarriesMiddlewareState() {
        enum UserKey: RequestStorageKey { typealias Value = String }
        let request = request("GET", "/")
        #expect(request.storage[UserKey.self] == nil)
        request.storage[UserKey.self] = "frodo"
        #expect(request.storage[UserKey.self] == "frodo")
    }
}

/// The README's "An app" routes, as written (without `Host.main`).
@Suite struct ReadmeAnApp {
    var router: Router {
        var router = Router()

        router.get("/hello/:name") { request in
            .text("hello, \(request.parameters["name"] ?? "")")
        }

        router.post("/login") { request in
            guard let user = request.form["user"], !user.isEmpty else {
                throw HTTPError(.badRequest, "who are you?")
            }
            var response = Response.redirect(to: "/", status: .seeOther)
            try response.setCookie(SetCookie(name: "user", value: user, secure: request.isSecure))
            return response
        }
        return router
    }

    @Test func itWorksAsWritten() {
        let hello = router.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": "/hello/world"]))
        #expect(String(decoding: hello.body, as: UTF8.self) == "hello, world")
        let form = ["REQUEST_METHOD": "POST", "REQUEST_URI": "/login", "CONTENT_TYPE": "application/x-www-form-urlencoded"]
        let login = router.respond(to: Request(environ: form, body: Array("user=frodo".utf8)))
        #expect(login.status == .seeOther)
        #expect(login.headers["Set-Cookie"] == "user=frodo; Path=/; HttpOnly; SameSite=Lax")
        #expect(router.respond(to: Request(environ: form, body: [])).status == .badRequest)
        // A value a cookie cannot carry is refused, not sent: a logged 500.
        #expect(router.respond(to: Request(environ: form, body: Array("user=two+words".utf8))).status == .internalServerError)
    }
}
