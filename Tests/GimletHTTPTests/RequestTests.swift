import Testing
@_spi(GimletInlined) @testable import GimletHTTP

@Suite struct RequestFromEnviron {
    let nginxEnviron: [String: String] = [
        "REQUEST_METHOD": "POST", "REQUEST_URI": "/items/a%2Fb?x=1&y=two+words", "QUERY_STRING": "x=1&y=two+words",
        "SCRIPT_NAME": "/items/a/b", "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": "13", "HTTP_USER_AGENT": "curl/8", "HTTP_X_FORWARDED_FOR": "10.0.0.1",
        "HTTP_COOKIE": "a=1; b=2", "HTTPS": "on", "REMOTE_ADDR": "127.0.0.1", "REQUEST_SCHEME": "https",
    ]

    @Test func methodPathAndQuery() {
        let request = Request(environ: nginxEnviron, body: Array("name=Frodo&x=".utf8))
        #expect(request.method == .post)
        #expect(request.path == "/items/a%2Fb")
        #expect(request.queryString == "x=1&y=two+words")
        #expect(request.query["x"] == "1")
        #expect(request.query["y"] == "two words")
        #expect(request.form["name"] == "Frodo")
        #expect(request.form["x"] == "")
        #expect(request.cookies == ["a": "1", "b": "2"])
        #expect(request.isSecure)
        #expect(request.remoteAddress == "127.0.0.1")
    }

    @Test func headersMapToCGINames() {
        let request = Request(environ: nginxEnviron)
        #expect(request.headers["User-Agent"] == "curl/8")
        #expect(request.headers["user-agent"] == "curl/8")
        #expect(request.headers["X-Forwarded-For"] == "10.0.0.1")
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(request.headers["Content-Length"] == "13")
        #expect(request.headers["Missing"] == nil)
        #expect(request.headers.all.map(\.name).contains("X-Forwarded-For"))
    }

    @Test(arguments: [
        (["REQUEST_URI": "/a/b?q"], "/a/b"),
        (["REQUEST_URI": "/a/b#frag"], "/a/b"),
        (["REQUEST_URI": "http://example.com/x/y?z"], "/x/y"),
        (["REQUEST_URI": "http://example.com"], "/"),
        (["SCRIPT_NAME": "/app", "PATH_INFO": "/x"], "/app/x"),
        (["PATH_INFO": "/only"], "/only"),
        ([:], "/"),
    ])
    func routedPath(environ: [String: String], expected: String) {
        #expect(Request(environ: environ).path == expected)
    }

    @Test func queryFallsBackToRequestURI() {
        #expect(Request(environ: ["REQUEST_URI": "/p?a=1&b#frag"]).queryString == "a=1&b")
        #expect(Request(environ: ["REQUEST_URI": "/p?a=1", "QUERY_STRING": "z=9"]).query["z"] == "9")
        #expect(Request(environ: ["REQUEST_URI": "/p"]).queryString == "")
    }

    @Test func formIsEmptyForOtherContentTypes() {
        let request = Request(environ: ["REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json"],
                              body: Array("a=1".utf8))
        #expect(request.form.isEmpty)
        #expect(request.bodyText == "a=1")
    }

    @Test(arguments: [
        (["HTTPS": "on"], true), (["HTTPS": "1"], true), (["HTTPS": "off"], false), (["HTTPS": ""], false),
        (["REQUEST_SCHEME": "https"], true), (["REQUEST_SCHEME": "http"], false), ([:], false),
    ])
    func secure(environ: [String: String], expected: Bool) {
        #expect(Request(environ: environ).isSecure == expected)
    }

    @Test func invalidUTF8BodyIsNotText() {
        let request = Request(environ: [:], body: [0xFF, 0xFE])
        #expect(request.bodyText == nil)
    }
}

@Suite struct CookieParsing {
    @Test(arguments: [
        ("a=1", ["a": "1"]),
        ("a=1; b=2", ["a": "1", "b": "2"]),
        ("a=1;b=2", ["a": "1", "b": "2"]),
        (#"a="quoted value""#, ["a": "quoted value"]),
        ("a=1; a=2", ["a": "1"]),
        ("  a = 1 ;\tb=2\t", ["a": "1", "b": "2"]),
        ("junk; a=1; =nameless; ;;", ["a": "1"]),
        ("a=", ["a": ""]),
        ("a=b=c", ["a": "b=c"]),
        ("bad name=1; ok=2", ["ok": "2"]),
        (#"x="; y=2"#, ["x": "\"", "y": "2"]),
        ("", [:]),
        (";;;", [:]),
        ("=", [:]),
    ])
    func parse(header: String, expected: [String: String]) {
        #expect(CookieHeader.parse(header) == expected)
    }

    @Test func hostileInputsDoNotCrash() {
        let hostile = [
            String(repeating: ";", count: 10_000),
            String(repeating: "a=", count: 5_000),
            "\u{0}=\u{0}", "é=ü; ok=1", String(repeating: "x", count: 100_000) + "=1",
            "a=\"", "\"=\"", "a=1\r\nSet-Cookie: evil=1",
        ]
        for header in hostile { _ = CookieHeader.parse(header) }
        #expect(CookieHeader.parse("é=ü; ok=1") == ["ok": "1"])
    }
}

@Suite struct FormDecoding {
    @Test(arguments: [
        ("a=1&b=2", [("a", "1"), ("b", "2")]),
        ("a=%41%42&b=%zz&c=%4", [("a", "AB"), ("b", "%zz"), ("c", "%4")]),
        ("q=hello+world%21", [("q", "hello world!")]),
        ("flag&x=", [("flag", ""), ("x", "")]),
        ("&&a=1&&", [("a", "1")]),
        ("k=%E2%9C%93", [("k", "✓")]),
        ("bad=%FF&ok=1", [("ok", "1")]),
        ("a=1=2", [("a", "1=2")]),
        ("", []),
    ])
    func decode(encoded: String, expected: [(String, String)]) {
        let form = URLEncodedForm(encoded)
        #expect(form.map(\.name) == expected.map(\.0))
        #expect(form.map(\.value) == expected.map(\.1))
    }

    @Test func repeatedNames() {
        let form = URLEncodedForm("tag=a&tag=b")
        #expect(form["tag"] == "a")
        #expect(form.values(for: "tag") == ["a", "b"])
        #expect(form.contains("tag"))
        #expect(!form.contains("nope"))
    }

    @Test func invalidUTF8BytesInBodyAreDropped() {
        let form = URLEncodedForm(bytes: Array("a=1&".utf8) + [0xC3, 0x28] + Array("=x&b=2".utf8))
        #expect(form.map(\.name) == ["a", "b"])
    }
}

@Suite struct CGIEnvironmentStorage {
    @Test func fromATransportBufferAndLayout() {
        // As a transport hands it over: KEY=VALUE entries back to back, places found.
        let raw = Array("A=1EMPTY=EQ=a=bA=2".utf8)
        var layout = CGIEnvironment.Layout()
        for (start, key, value) in [(0, 1, 1), (3, 5, 0), (9, 2, 3), (15, 1, 1), (15, 1, 99), (-1, 1, 1), (Int.max, 1, 1), (0, Int.max, 1), (0, 1, Int.max)] {
            layout.append(start: start, keyLength: key, valueLength: value)
        }
        let environ = CGIEnvironment(storage: raw, layout: layout)
        #expect(environ.count == 4, "entries outside the buffer are dropped")
        #expect(environ["A"] == "2", "a later duplicate wins")
        #expect(environ["EMPTY"] == "")
        #expect(environ["EQ"] == "a=b")
        #expect(environ["MISSING"] == nil)
        #expect(environ.dictionary == ["A": "2", "EMPTY": "", "EQ": "a=b"])
    }

    /// A header sent on several lines arrives as several HTTP_ parameters
    /// (nginx 1.22): their values are joined in order, cookies with "; ".
    @Test func repeatedRequestHeadersAreJoined() {
        var environ = CGIEnvironment()
        for (key, value) in [("HTTP_COOKIE", "gimlet-p=abc"), ("REQUEST_METHOD", "GET"), ("HTTP_ACCEPT", "text/html"),
                             ("HTTP_COOKIE", "theme=dark"), ("HTTP_ACCEPT", "*/*"), ("HTTP_COOKIE", "x=1"),
                             ("REQUEST_METHOD", "POST")] {
            environ.append(key: key, value: value)
        }
        #expect(environ["HTTP_COOKIE"] == "gimlet-p=abc; theme=dark; x=1")
        #expect(environ["HTTP_ACCEPT"] == "text/html, */*")
        #expect(environ["REQUEST_METHOD"] == "POST", "not a header: a later duplicate wins")
        let request = Request(environ: environ)
        #expect(request.cookies == ["gimlet-p": "abc", "theme": "dark", "x": "1"])
        #expect(request.headers["Accept"] == "text/html, */*")
    }

    /// The one-pass request line finds what a lookup of each parameter
    /// finds, whatever the order, the duplicates, the look-alike keys and the
    /// missing ones: environs made at random from a small alphabet of them.
    @Test func theRequestLineFindsWhatEachLookupFinds() {
        let keys = ["REQUEST_METHOD", "QUERY_STRING", "REQUEST_URI", "SCRIPT_NAME", "PATH_INFO", "HTTP_X_REQUEST_ID",
                    "REQUEST_METHOX", "QUERY_STRINGS", "RREQUEST_URI", "SCRIPT_NAMF", "PATH_INFP", "HTTP_X_REQUEST_IE",
                    "R", "", "HTTP_HOST", "CONTENT_TYPE"]
        let values = ["", "GET", "POST", "/a/b?c=d#e", "x=1", "/s", "/p", "http://h/x?y", "id-1", "bad id", "é?"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var environ = CGIEnvironment()
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                environ.append(key: keys.randomElement(using: &generator) ?? "", value: values.randomElement(using: &generator) ?? "")
            }
            let line = RequestLine(environ)
            #expect(line.method == HTTPMethod(environ["REQUEST_METHOD"] ?? "GET"), "\(environ)")
            #expect(line.queryString == environ["QUERY_STRING"] ?? Request.queryPart(of: environ["REQUEST_URI"]), "\(environ)")
            #expect(line.path == Request.routedPath(uri: environ["REQUEST_URI"], scriptName: environ["SCRIPT_NAME"],
                                                    pathInfo: environ["PATH_INFO"]), "\(environ)")
            #expect(line.requestIDHeader(in: environ) == environ["HTTP_X_REQUEST_ID"], "\(environ)")
        }
    }

    @Test func dictionaryRoundTrip() {
        let environ: CGIEnvironment = ["REQUEST_METHOD": "GET", "HTTP_X": "é"]
        #expect(environ["HTTP_X"] == "é")
        #expect(Set(environ.keys) == ["REQUEST_METHOD", "HTTP_X"])
    }
}

@Suite struct FormBytes {
    @Test func pairsSplitOnBytesNotCharacters() {
        // "&" or "=" followed by a combining mark is one Character, but still a separator.
        let form = URLEncodedForm("a=1&\u{301}b=2&c=\u{301}&d")
        #expect(form["a"] == "1")
        #expect(form["\u{301}b"] == "2")
        #expect(form["c"] == "\u{301}")
        #expect(form["d"] == "")
        #expect(form.map(\.name) == ["a", "\u{301}b", "c", "d"])
    }
}
