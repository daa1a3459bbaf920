import Testing
@testable import GimletHTTP

@Suite struct OriginParsing {
    @Test(arguments: [
        ("http://example.com", "http", "example.com", 80),
        ("https://Example.COM", "https", "example.com", 443),
        ("https://example.com:8443", "https", "example.com", 8443),
        ("http://127.0.0.1:8080/", "http", "127.0.0.1", 8080),
        ("http://[::1]:8080", "http", "[::1]", 8080),
        ("https://[::1]", "https", "[::1]", 443),
    ])
    func parses(text: String, scheme: String, host: String, port: Int) throws {
        let origin = try #require(HTTPOrigin(text))
        #expect(origin == HTTPOrigin(scheme: scheme, host: host, port: port))
    }

    @Test(arguments: ["null", "", "example.com", "http://", "http://a.com:99999", "http://a.com:x",
                      "http://a.com/path", "http://user@a.com", "http://a b.com", "http://[::1", "http://a.com:",
                      // Found by fuzz-urls: brackets and colons outside an IPv6 literal.
                      "https://Float[::]81:443", "http://a:b:80", "http://[]:80", "http://[g::1]"])
    func refuses(text: String) {
        #expect(HTTPOrigin(text) == nil)
    }

    @Test func defaultPortsAreLeftOutOfTheText() throws {
        #expect(try #require(HTTPOrigin("https://a.example:443")).description == "https://a.example")
        #expect(try #require(HTTPOrigin("http://a.example:8080")).description == "http://a.example:8080")
    }
}

@Suite struct RequestOrigin {
    /// What each web server passes for a browser at `http://127.0.0.1:8080/`
    /// (or the HTTPS variant), and the origin the browser sends.
    @Test(arguments: [
        // Debian 12's stock fastcgi_params/scgi_params: HTTP_HOST is $host, without the port.
        (["HTTP_HOST": "127.0.0.1", "SERVER_PORT": "8080", "REQUEST_SCHEME": "http"], "http://127.0.0.1:8080"),
        // Upstream nginx and Apache: the Host header as sent.
        (["HTTP_HOST": "127.0.0.1:8080", "SERVER_PORT": "8080", "REQUEST_SCHEME": "http"], "http://127.0.0.1:8080"),
        // Default ports: the browser leaves them out of Origin and Host alike.
        (["HTTP_HOST": "example.com", "SERVER_PORT": "80"], "http://example.com"),
        (["HTTP_HOST": "example.com", "SERVER_PORT": "443", "HTTPS": "on"], "https://example.com"),
        (["HTTP_HOST": "example.com", "SERVER_PORT": "8443", "HTTPS": "on", "REQUEST_SCHEME": "https"], "https://example.com:8443"),
        // Apache over TLS on a non-default port.
        (["HTTP_HOST": "example.com:8443", "SERVER_PORT": "8443", "HTTPS": "on", "REQUEST_SCHEME": "https"], "https://example.com:8443"),
        (["HTTP_HOST": "[::1]", "SERVER_PORT": "8080"], "http://[::1]:8080"),
        (["SERVER_NAME": "example.com", "SERVER_PORT": "80"], "http://example.com"),
    ])
    func derivedFromWhatTheServerSends(environ: [String: String], expected: String) throws {
        let request = Request(environ: environ)
        #expect(request.origin == HTTPOrigin(expected))
        #expect(request.origin?.description == expected)
    }

    @Test func noHostNoOrigin() {
        #expect(Request(environ: ["SERVER_NAME": "_"]).origin == nil)
        #expect(Request(environ: ["HTTP_HOST": "bad host"]).origin == nil)
    }
}
