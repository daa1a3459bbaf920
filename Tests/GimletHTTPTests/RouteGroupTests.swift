import Foundation
import Synchronization
import Testing
@testable import GimletHTTP

@Suite struct RouteGroups {
    typealias Log = AsyncRoutes.Log

    func respond(_ router: Router, _ method: String, _ uri: String) -> (HTTPStatus, String) {
        let response = router.respond(to: Request(environ: ["REQUEST_METHOD": method, "REQUEST_URI": uri]))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    /// Answers 401 unless the query says `signed=1`.
    struct RequireSignIn: Middleware {
        func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
            guard request.query["signed"] == "1" else { throw HTTPError(.unauthorized, "sign in") }
            return try next(request)
        }
    }

    var router: Router {
        var router = Router()
        router.get("/") { _ in .text("home") }
        router.group("/api") { api in
            api.use(RequireSignIn())
            api.get("/") { _ in .text("api index") }
            api.get("/items/:id") { request in .text("item \(try request.parameters.require("id", as: Int.self))") }
            api.post("/items") { _ in .text("created") }
            api.group("/v2/") { v2 in
                v2.get("/items/:id") { request async throws -> Response in
                    await Task.yield()
                    return .text("v2 item \(try request.parameters.require("id"))")
                }
            }
        }
        router.group("/docs") { docs in
            docs.get("/*") { request in .text("doc \(request.parameters["*"] ?? "")") }
        }
        return router
    }

    @Test(arguments: [
        ("GET", "/", HTTPStatus.ok, "home"),
        ("GET", "/api?signed=1", .ok, "api index"),
        ("GET", "/api/", .unauthorized, "sign in"),
        ("GET", "/api/items/7?signed=1", .ok, "item 7"),
        ("GET", "/api/items/7", .unauthorized, "sign in"),
        ("POST", "/api/items?signed=1", .ok, "created"),
        ("GET", "/api/v2/items/x?signed=1", .ok, "v2 item x"),
        ("GET", "/api/v2/items/x", .unauthorized, "sign in"),
        ("GET", "/docs/a/b.html", .ok, "doc a/b.html"),
        ("GET", "/docs", .ok, "doc "),
    ])
    func routesLiveUnderTheirPrefixBehindTheirMiddleware(method: String, uri: String, status: HTTPStatus, body: String) {
        let (answered, text) = respond(router, method, uri)
        #expect(answered == status)
        #expect(text == body)
    }

    @Test func unmatchedPathsUnderAPrefixAreTheRoutersAndSkipTheGroupsMiddleware() {
        #expect(respond(router, "GET", "/api/nothing").0 == .notFound, "404, not the group's 401")
        #expect(respond(router, "DELETE", "/api/items").0 == .methodNotAllowed)
        #expect(respond(router, "GET", "/apix/items/1?signed=1").0 == .notFound, "the prefix is whole segments")
    }

    @Test func typedParametersAnswer400ForABadValueAnd500ForAMissingName() {
        enum Color: String { case red, green }
        var router = Router()
        router.get("/n/:n") { .text("\(try $0.parameters.require("n", as: Int.self) + 1)") }
        router.get("/c/:color") { .text("\(try $0.parameters.require("color", as: Color.self))") }
        router.get("/u/:n") { .text("\(try $0.parameters.require("n", as: UInt8.self))") }
        router.get("/wrong/:n") { .text(try $0.parameters.require("m")) }
        #expect(respond(router, "GET", "/n/41") == (.ok, "42"))
        #expect(respond(router, "GET", "/n/-3") == (.ok, "-2"))
        #expect(respond(router, "GET", "/n/4x") == (.badRequest, "the path's :n is not a valid Int"))
        #expect(respond(router, "GET", "/n/99999999999999999999999").0 == .badRequest, "an overflow is a bad value")
        #expect(respond(router, "GET", "/u/256").0 == .badRequest)
        #expect(respond(router, "GET", "/c/green") == (.ok, "green"))
        #expect(respond(router, "GET", "/c/blue") == (.badRequest, "the path's :color is not a valid Color"))
        #expect(respond(router, "GET", "/wrong/1").0 == .internalServerError, "a handler asking for a name its pattern lacks")
    }

    @Test func middlewareNestsRouterThenGroupThenInnerGroupWhereverUseIsCalled() {
        let log = Log()
        var router = Router()
        router.group("/g") { group in
            group.get("/sync") { _ in log.add("sync handler"); return .text("s") }
            group.use(AsyncRoutes.SyncTrace(name: "g1", log: log))
            group.group("/inner") { inner in
                inner.get("/async") { _ in
                    _ = await AsyncRoutes.fromAnotherThread("x")
                    log.add("async handler")
                    return .text("a")
                }
                inner.use(AsyncRoutes.AsyncTrace(name: "i", log: log))
            }
            group.use(AsyncRoutes.AsyncTrace(name: "g2", log: log))
        }
        router.use(AsyncRoutes.SyncTrace(name: "r", log: log))
        let frozen = router
        let texts = Mutex<[String]>([])
        AsyncRoutes().withinTenSeconds {
            for path in ["/g/sync", "/g/inner/async", "/g/nothing"] {
                let response = frozen.respond(to: Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": path]))
                texts.withLock { $0.append("\(response.status.code)") }
            }
        }
        #expect(texts.withLock { $0 } == ["200", "200", "404"])
        #expect(log.all == ["r>", "g1>", "g2>", "sync handler", "<g2", "<g1", "<r",
                            "r>", "g1>", "g2>", "i>", "async handler", "<i", "<g2", "<g1", "<r",
                            "r>", "<r"])
    }

    @Test func badPrefixesAndPatternsAreReportedByValidate() {
        var router = Router()
        router.group("api") { $0.get("/x") { _ in .text("") } }
        router.group("/files/*") { $0.get("/x") { _ in .text("") } }
        router.group("/ok") { group in
            group.get("x") { _ in .text("") }
            group.get("/dup") { _ in .text("") }
        }
        router.get("/ok/dup") { _ in .text("") }
        let error = #expect(throws: RouterConfigurationError.self) { try router.validate() }
        let problems = error?.problems ?? []
        #expect(problems.count == 4, "one line per mistake, none for a bad group's routes: \(problems)")
        #expect(problems.contains("route GET /ok/dup is registered twice"))
    }

    /// A part that logs its host lifecycle calls; `failing` makes its validate throw.
    final class Part: HostLifecycle {
        struct Invalid: Error {}
        let name: String
        let log: Log
        let failing: Bool
        init(_ name: String, _ log: Log, failing: Bool = false) { self.name = name; self.log = log; self.failing = failing }
        func validate() throws {
            log.add("validate " + name)
            if failing { throw Invalid() }
        }
        func reload() throws { log.add("reload " + name) }
        func shutdown() { log.add("shutdown " + name) }
    }

    final class Lifecycle: Middleware {
        let part: Part
        init(_ name: String, _ log: Log) { part = Part(name, log) }
        func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response { try next(request) }
        func validate() throws { try part.validate() }
        func reload() throws { try part.reload() }
        func shutdown() { part.shutdown() }
    }

    final class AsyncLifecycle: AsyncMiddleware {
        let part: Part
        init(_ name: String, _ log: Log) { part = Part(name, log) }
        func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
            try await next(request)
        }
        func reload() throws { try part.reload() }
        func shutdown() { part.shutdown() }
    }

    @Test func theHostLifecycleReachesTheGroupsMiddlewareAndManagedParts() throws {
        let log = Log()
        var router = Router()
        router.use(Lifecycle("router", log))
        router.manage(Part("cache", log))
        router.group("/a") { group in
            group.use(AsyncLifecycle("group", log))
            group.group("/b") { $0.use(Lifecycle("inner", log)) }
        }
        try router.validate()
        try router.reload()
        router.shutdown()
        #expect(log.all == ["validate router", "validate cache", "validate inner",
                            "reload router", "reload cache", "reload group", "reload inner",
                            "shutdown inner", "shutdown group", "shutdown cache", "shutdown router"])
    }

    @Test func aPartThatFailsValidationStopsTheRest() {
        let log = Log()
        var router = Router()
        router.manage(Part("first", log, failing: true))
        router.use(Lifecycle("second", log))
        #expect(throws: Part.Invalid.self) { try router.validate() }
        #expect(log.all == ["validate first"])
    }
}
