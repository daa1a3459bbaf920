import Testing
@testable import GimletHTTP

@Suite struct AccessChecks {
    /// Allows `?user=NAME` as that user, redirects `?go=1`, denies the rest.
    var router: Router {
        var router = Router()
        router.use(Stamp())
        router.get("/private/page") { _ in .text("the app's own page") }
        router.authorizer { request in
            if request.query["go"] == "1" { return .redirect(to: "/sign-in?next=" + request.accessedURI) }
            guard let user = request.query["user"] else { return .deny(.unauthorized) }
            return .allow(["GIMLET_USER": user, "GIMLET_ROLE": "reader"])
        }
        return router
    }

    /// Marks every response, to show the router's middleware runs around the check.
    struct Stamp: Middleware {
        func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
            var response = try next(request)
            response.headers["X-Stamp"] = "1"
            return response
        }
    }

    func respond(_ router: Router, _ environ: [String: String]) -> Response {
        router.respond(to: Request(environ: ["REQUEST_METHOD": "GET"].merging(environ) { $1 }))
    }

    func header(_ response: Response, _ name: String) -> String? { response.headers[name] }

    @Test func nginxAsksAtTheChecksPathAndReadsXHeaders() {
        let response = respond(router, ["REQUEST_URI": "/-/authorize?user=frodo", "GIMLET_ORIGINAL_URI": "/files/a.txt"])
        #expect(response.status == .ok)
        #expect(header(response, "X-Gimlet-User") == "frodo")
        #expect(header(response, "X-Gimlet-Role") == "reader")
        #expect(header(response, "Variable-GIMLET_USER") == nil)
        #expect(header(response, "Cache-Control") == "no-store")
        #expect(header(response, "X-Stamp") == "1", "the router's middleware runs around the check")
        #expect(response.body.isEmpty)
    }

    @Test func theAuthorizerRoleReachesTheCheckWhateverThePathAndGetsVariables() {
        for uri in ["/private/page?user=sam", "/static/x.css?user=sam", "/?user=sam"] {
            let response = respond(router, ["REQUEST_URI": uri, "FCGI_ROLE": "AUTHORIZER"])
            #expect(response.status == .ok, "\(uri)")
            #expect(header(response, "Variable-GIMLET_USER") == "sam", "\(uri)")
            #expect(header(response, "X-Gimlet-User") == nil, "Apache would pass an X- header on to the client")
            #expect(header(response, "Cache-Control") == nil, "nor a no-store, on the protected file")
        }
        let own = respond(router, ["REQUEST_URI": "/private/page", "FCGI_ROLE": "RESPONDER"])
        #expect(String(decoding: own.body, as: UTF8.self) == "the app's own page", "a responder request is routed by path")
    }

    @Test func aDenialIsItsStatusAndARedirectGoesToTheSignInPage() {
        let denied = respond(router, ["REQUEST_URI": "/files/a", "FCGI_ROLE": "AUTHORIZER"])
        #expect(denied.status == .unauthorized)
        #expect(header(denied, "Cache-Control") == "no-store")
        let sent = respond(router, ["REQUEST_URI": "/files/a?go=1", "FCGI_ROLE": "AUTHORIZER"])
        #expect(sent.status == .found)
        #expect(header(sent, "Location") == "/sign-in?next=/files/a?go=1")
    }

    @Test func theCheckAnswersAnyMethodAtItsPath() {
        for method in ["POST", "DELETE", "PROPFIND", "HEAD"] {
            let response = respond(router, ["REQUEST_METHOD": method, "REQUEST_URI": "/-/authorize?user=pip"])
            #expect(response.status == .ok && header(response, "X-Gimlet-User") == "pip", "\(method)")
        }
        #expect(respond(router, ["REQUEST_METHOD": "POST", "REQUEST_URI": "/private/page"]).status == .methodNotAllowed)
        var bad = Router()
        bad.authorizer("/-/authorize/:realm") { _ in .allow }
        let error = #expect(throws: RouterConfigurationError.self) { try bad.validate() }
        #expect(error?.problems.first?.contains("must be a literal path") == true)
    }

    @Test func withoutAnAuthorizerTheRoleIsRoutedByPath() {
        var router = Router()
        router.get("/a") { _ in .text("a") }
        #expect(respond(router, ["REQUEST_URI": "/a", "FCGI_ROLE": "AUTHORIZER"]).status == .ok)
        #expect(respond(router, ["REQUEST_URI": "/b", "FCGI_ROLE": "AUTHORIZER"]).status == .notFound)
    }

    @Test func variablesThatCannotBeHeadersAreLeftOut() {
        let decision = AccessDecision.allow(["GIMLET_USER": "frodo\r\nSet-Cookie: x=1", "BAD-NAME": "v", "": "v", "OK": "tab\there"])
        for role in [false, true] {
            let response = decision.response(authorizerRole: role)
            let names = response.headers.map(\.name).filter { $0 != "Cache-Control" && $0 != "Content-Type" && $0 != "Content-Length" }
            #expect(names == [role ? "Variable-OK" : "X-Ok"], "role \(role): \(names)")
        }
    }

    @Test func anAsyncCheckWorksTheSameAndASecondOneIsReported() throws {
        var router = Router()
        router.authorizer { request async throws -> AccessDecision in
            await Task.yield()
            return request.query["user"].map { .allow(["GIMLET_USER": $0]) } ?? .deny(.forbidden)
        }
        #expect(respond(router, ["REQUEST_URI": "/x?user=a", "FCGI_ROLE": "AUTHORIZER"]).headers["Variable-GIMLET_USER"] == "a")
        #expect(respond(router, ["REQUEST_URI": "/-/authorize"]).status == .forbidden)
        try router.validate()
        router.authorizer("/-/other") { _ in .allow }
        let error = #expect(throws: RouterConfigurationError.self) { try router.validate() }
        #expect(error?.problems == ["an authorizer is registered twice"])
    }

    @Test func headerNamesFromVariableNames() {
        #expect(AccessDecision.headerName(of: "GIMLET_USER") == "X-Gimlet-User")
        #expect(AccessDecision.headerName(of: "user") == "X-User")
        #expect(AccessDecision.isVariableName("A_1") && !AccessDecision.isVariableName("A-1") && !AccessDecision.isVariableName(""))
    }
}

@Suite struct TraceContextParsing {
    @Test func theTraceIDOfATraceparent() {
        #expect(RequestTracing.traceID(of: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(RequestTracing.traceID(of: "00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil, "all zero is invalid")
        #expect(RequestTracing.traceID(of: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01") == nil, "lower-case hex only")
        #expect(RequestTracing.traceID(of: "garbage") == nil)
        #expect(RequestTracing.traceID(of: "00-4bf9-00f067aa0ba902b7-01") == nil)
    }

    @Test func headersAreReadFromTheEnviron() {
        let environ: CGIEnvironment = ["HTTP_TRACEPARENT": "a", "HTTP_TRACESTATE": "b"]
        #expect(RequestTracing.EnvironExtractor().extract(key: "traceparent", from: environ) == "a")
        #expect(RequestTracing.EnvironExtractor().extract(key: "tracestate", from: environ) == "b")
    }
}
