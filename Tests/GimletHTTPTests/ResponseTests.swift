import Testing
@testable import GimletHTTP

@Suite struct SetCookieRendering {
    @Test func defaults() throws {
        let cookie = SetCookie(name: "sid", value: "abc123")
        #expect(try cookie.headerValue() == "sid=abc123; Path=/; HttpOnly; SameSite=Lax")
    }

    @Test func everyAttribute() throws {
        let cookie = SetCookie(name: "p", value: "v", maxAge: 3600, expires: 784_111_777, path: "/app",
                               domain: "example.com", secure: true, httpOnly: true, sameSite: .strict)
        #expect(try cookie.headerValue()
            == "p=v; Max-Age=3600; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Strict")
    }

    @Test func deletion() throws {
        #expect(try SetCookie.deletion(name: "sid").headerValue()
            == "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax")
    }

    @Test(arguments: [
        ("a\r\nSet-Cookie: x", "v", CookieError.Kind.invalidName),
        ("a;b", "v", .invalidName),
        ("", "v", .invalidName),
        ("a b", "v", .invalidName),
        ("a", "v\r\nX-Evil: 1", .invalidValue),
        ("a", "v; Domain=evil.com", .invalidValue),
        ("a", "with space", .invalidValue),
        ("a", "q\"uote", .invalidValue),
        ("a", "comma,", .invalidValue),
        ("a", "é", .invalidValue),
    ])
    func refusesInjection(name: String, value: String, kind: CookieError.Kind) {
        #expect(throws: CookieError(kind, name)) { try SetCookie(name: name, value: value).headerValue() }
    }

    @Test func refusesInjectionInAttributes() throws {
        var cookie = SetCookie(name: "a", value: "b")
        cookie.path = "/x; Domain=evil"
        #expect(throws: CookieError(.invalidPath, "a")) { try cookie.headerValue() }
        cookie.path = "/\r\n"
        #expect(throws: CookieError(.invalidPath, "a")) { try cookie.headerValue() }
        cookie.path = "/"
        cookie.domain = "evil.com; Secure"
        #expect(throws: CookieError(.invalidDomain, "a")) { try cookie.headerValue() }
        cookie.domain = nil
        cookie.sameSite = SetCookie.SameSite.none
        #expect(throws: CookieError(.sameSiteNoneWithoutSecure, "a")) { try cookie.headerValue() }
        cookie.secure = true
        #expect(try cookie.headerValue().hasSuffix("; Secure; HttpOnly; SameSite=None"))
    }

    @Test(arguments: [
        (Int64(0), "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_795_000_000, "Wed, 18 Nov 2026 11:06:40 GMT"),
        (-86_400, "Wed, 31 Dec 1969 00:00:00 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
    ])
    func httpDates(seconds: Int64, expected: String) {
        #expect(HTTPDate.format(unixSeconds: seconds) == expected)
    }
}

@Suite struct ResponseSerialization {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func cgiResponse() throws {
        var response = Response.text("hi", status: .created)
        try response.setCookie(SetCookie(name: "a", value: "1"))
        try response.setCookie(SetCookie(name: "b", value: "2"))
        #expect(text(try response.cgiBytes()) == """
            Status: 201 Created\r
            Content-Type: text/plain; charset=utf-8\r
            Set-Cookie: a=1; Path=/; HttpOnly; SameSite=Lax\r
            Set-Cookie: b=2; Path=/; HttpOnly; SameSite=Lax\r
            Content-Length: 2\r
            \r
            hi
            """)
    }

    @Test func headKeepsLengthDropsBody() throws {
        #expect(text(try Response.text("hello").cgiBytes(includeBody: false))
            == "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n")
    }

    @Test func explicitContentLengthIsKept() throws {
        var response = Response(body: [])
        response.headers["content-length"] = "0"
        #expect(text(try response.cgiBytes()) == "Status: 200 OK\r\ncontent-length: 0\r\n\r\n")
    }

    @Test(arguments: [("X-Evil", "a\r\nSet-Cookie: x=1"), ("X-Evil", "a\nb"), ("X-Nul", "a\u{0}"), ("Bad Name", "v"), ("", "v")])
    func refusesUnsafeHeaders(name: String, value: String) {
        var response = Response.text("x")
        response.headers.add(name, value)
        #expect(throws: UnsafeHeaderError.self) { try response.cgiBytes() }
    }

    @Test func unsafeResponseBecomesA500() {
        struct Evil: Responder {
            func respond(to request: Request) -> Response { .redirect(to: "/x\r\nSet-Cookie: admin=1") }
        }
        let bytes = CGIExchange.respond(environ: ["REQUEST_METHOD": "GET"], body: [], responder: Evil(), logger: Request.defaultLogger)
        #expect(text(bytes).hasPrefix("Status: 500 Internal Server Error\r\n"))
        #expect(!text(bytes).contains("admin"))
    }

    @Test func headers() {
        var headers: HTTPHeaders = ["A": "1"]
        headers.add("Set-Cookie", "x")
        headers.add("set-cookie", "y")
        #expect(headers.values(for: "SET-COOKIE") == ["x", "y"])
        headers["Set-Cookie"] = "z"
        #expect(headers.values(for: "set-cookie") == ["z"])
        headers["a"] = nil
        #expect(!headers.contains("A"))
        #expect(headers.count == 1)
    }

    @Test func jsonAndRedirect() throws {
        let json = try Response.json(["k": 1])
        #expect(json.headers["Content-Type"] == "application/json")
        #expect(text(json.body) == #"{"k":1}"#)
        let redirect = Response.redirect(to: "/next", status: .seeOther)
        #expect(redirect.status.code == 303)
        #expect(redirect.headers["Location"] == "/next")
    }

    @Test(arguments: [
        (nil as String?, CGIExchange.BodyPlan.readToEnd), ("", .readToEnd), ("0", .read(0)), ("10", .read(10)),
        ("11", .tooLarge), ("-1", .invalidLength), ("1e3", .invalidLength), (" 5", .invalidLength),
        ("99999999999999999999999", .invalidLength),
    ])
    func bodyPlans(contentLength: String?, plan: CGIExchange.BodyPlan) {
        #expect(CGIExchange.bodyPlan(contentLength: contentLength, limit: 10) == plan)
    }
}
