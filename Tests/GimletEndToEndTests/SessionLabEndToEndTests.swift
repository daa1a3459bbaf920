import Foundation
import Testing

/// session-lab behind a real nginx: the session contract as a browser sees it.
@Suite(.serialized) struct SessionLabBehindNginx {
    static let secret = "end-to-end-secret-0123456789abcdef"

    final class Stack: @unchecked Sendable {
        // @unchecked: immutable after init.
        let directory: TemporaryDirectory
        let app: ManagedProcess
        let nginx: Nginx
        let client: HTTPClient

        init(_ extra: [String] = [], scgi: Bool = false, environment: [String: String] = [:]) throws {
            directory = try TemporaryDirectory("gimlet-lab")
            let socket = directory.file("lab.sock")
            app = try ManagedProcess(
                "session-lab", executable: try Repository.binary("session-lab"),
                arguments: [scgi ? "--scgi" : "--fastcgi", "unix:" + socket, "--socket-mode", "666", "--threads", "4"]
                    + (extra.contains("--secret-file") ? [] : ["--secret", SessionLabBehindNginx.secret]) + extra,
                outputPath: directory.file("lab.log"),
                environment: ProcessInfo.processInfo.environment.merging(["GIMLET_DATA_DIR": directory.file("data")]) { $1 }
                    .merging(environment) { $1 })
            nginx = try Nginx(socket: socket, config: scgi ? "gimlet-scgi.conf" : "gimlet.conf")
            var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
            client.cookieJar = directory.file("cookies.txt")
            self.client = client
            let probe = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
            guard waitUntil(seconds: 10, { (try? probe.get("/hello").status) == 200 }) else {
                throw SetupError("session-lab did not answer through nginx: \(app.output) \(nginx.errorLog)")
            }
        }

        deinit {
            nginx.process.stop()
            app.stop()
        }

        /// The jar's cookies as a `Cookie` header value.
        var cookieHeader: String { client.jarCookieHeader }

        /// The jar's cookies by name.
        var jar: [String: String] { client.jarCookies }
    }

    /// A client that sends its cookies on two `Cookie` lines (curl does, given
    /// a jar and a `Cookie` header): nginx 1.22 passes both lines, which the
    /// SCGI transport refused (502) and FastCGI reduced to the last line
    /// (the session cookie lost). Both lines count now.
    @Test(arguments: [false, true])
    func cookiesOnTwoHeaderLinesAreAllRead(scgi: Bool) throws {
        let stack = try Stack(scgi: scgi)
        #expect(try stack.client.get("/set/fruit/apple").text == "ok")
        let result = try stack.client.get("/get/fruit", headers: ["Cookie": "theme=dark"])
        #expect(result.status == 200, "\(result.status) \(stack.app.output.suffix(300))")
        #expect(result.text == "apple", "the session cookie on the first line was read")
    }

    /// `make test` runs the lab's suites again with `GIMLET_LAB_STYLE=async`
    /// (every handler and the lab's own middleware async): this shows the
    /// setting reaches the app behind nginx.
    @Test func theLabRunsInTheStyleAsked() throws {
        let stack = try Stack()
        let asked = ProcessInfo.processInfo.environment["GIMLET_LAB_STYLE"] ?? "sync"
        #expect(try stack.client.get("/style").text == (asked.isEmpty ? "sync" : asked))
    }

    @Test func theSessionContractThroughNginx() throws {
        let stack = try Stack()
        let client = stack.client

        let hello = try client.get("/hello")
        #expect(hello.headers("Set-Cookie").isEmpty, "a request that does not touch the session sets no cookie")

        #expect(try client.get("/get/foo").status == 404)
        #expect(try client.get("/set/foo/bar").text == "ok")
        #expect(try client.get("/get/foo").text == "bar")
        #expect(try client.get("/has/foo").text == "true")
        #expect(try client.get("/delete/foo").text == "ok")
        #expect(try client.get("/get/foo").status == 404)

        let permanent = try client.get("/set/ring/one?permanent=1&clientside=1")
        let permanentCookie = try #require(permanent.headers("Set-Cookie").first { $0.hasPrefix("gimlet-p=") })
        #expect(permanentCookie.contains("Max-Age=34560000") && permanentCookie.contains("HttpOnly"))
        #expect(!permanentCookie.contains("Secure"), "plain HTTP: no Secure")
        let browser = try client.get("/set/elf/legolas?permanent=0&clientside=1")
        let browserCookie = try #require(browser.headers("Set-Cookie").first { $0.hasPrefix("gimlet-n=") })
        #expect(!browserCookie.contains("Max-Age") && browserCookie.contains("HttpOnly"))
        #expect(browser.header("Vary") == "Cookie")
        #expect(browser.header("Cache-Control") == "private")

        #expect(try client.get("/is_permanent/ring").text == "true")
        #expect(try client.get("/is_permanent/elf").text == "false")
        #expect(try client.get("/counter").text == "1")
        #expect(try client.get("/counter").text == "2")
        #expect(try client.get("/len").text == "3")
        let id = try client.get("/id").text
        #expect(id.count == 32)
        let timestamp = try #require(Int(try client.get("/timestamp").text))
        #expect(abs(timestamp - Int(Date().timeIntervalSince1970)) < 60)

        #expect(try client.get("/append/list/a").text == "ok")
        #expect(try client.get("/append/list/b").text == "ok")
        #expect(try client.get("/flatten/list").text == "a:b")

        #expect(try client.get("/regenerate").text == "ok")
        #expect(try client.get("/id").text != id)
        #expect(try client.get("/get/ring").text == "one")
        #expect(try client.get("/counter").text == "3")
        let before = stack.jar
        let invalidated = try client.get("/invalidate")
        #expect(invalidated.text == "ok")
        let deletions = invalidated.headers("Set-Cookie")
        #expect(deletions.count == 2)
        #expect(deletions.allSatisfy { $0.contains("=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT") })
        // A client replaying the old cookies finds the server-side data gone
        // (client-side values live in the cookie itself and go with it).
        let replay = HTTPClient(baseURL: stack.nginx.baseURL, scratch: stack.directory)
        let oldCookies = before.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        #expect(try replay.get("/counter", headers: ["Cookie": oldCookies]).text == "1")
    }

    @Test func sessionsOverSCGIWithSeveralSetCookies() throws {
        let stack = try Stack(scgi: true)
        #expect(try stack.client.get("/set/a/1?permanent=1&clientside=1").text == "ok")
        #expect(try stack.client.get("/set/b/2?permanent=0").text == "ok")
        #expect(try stack.client.get("/get/a").text == "1")
        #expect(try stack.client.get("/get/b").text == "2")
        #expect(try stack.client.get("/invalidate").headers("Set-Cookie").count == 2, "both cookies in one response")
    }

    /// A browser at http://127.0.0.1:PORT/ sends `Origin: http://127.0.0.1:PORT`;
    /// Debian's stock params pass `HTTP_HOST` without the port. Same-origin
    /// POSTs must pass, foreign ones must not, over FastCGI and SCGI.
    @Test(arguments: [false, true]) func sameOriginPostsPassWithStockParams(scgi: Bool) throws {
        let stack = try Stack(scgi: scgi)
        let token = try stack.client.get("/csrf").text
        let form = Array("csrf_token=\(token)".utf8)
        let own = stack.nginx.baseURL
        for (origin, status) in [(own, 200), ("http://127.0.0.1", 403), ("http://127.0.0.1:1", 403),
                                 ("https://127.0.0.1:\(stack.nginx.port)", 403), ("https://evil.example", 403)] {
            let response = try stack.client.request(
                "POST", "/csrf_check", body: form,
                headers: ["Origin": origin, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"])
            #expect(response.status == status, "Origin \(origin): \(response.text)")
        }
        let crossSite = try stack.client.request(
            "POST", "/csrf_check", body: form,
            headers: ["Origin": own, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"])
        #expect(crossSite.status == 403)
    }

    @Test func aConfiguredPublicOriginIsAccepted() throws {
        // As behind a TLS-terminating proxy: nginx sees plain HTTP on its own port.
        let stack = try Stack(environment: ["GIMLET_PUBLIC_ORIGINS": "https://www.example.com"])
        let token = try stack.client.get("/csrf").text
        let form = Array("csrf_token=\(token)".utf8)
        for (origin, status) in [("https://www.example.com", 200), ("https://www.example.com:443", 200),
                                 ("http://www.example.com", 403)] {
            let response = try stack.client.request(
                "POST", "/csrf_check", body: form,
                headers: ["Origin": origin, "Content-Type": "application/x-www-form-urlencoded"])
            #expect(response.status == status, "Origin \(origin): \(response.text)")
        }
    }

    @Test func mangledCookiesNeverCauseA5xx() throws {
        let stack = try Stack()
        _ = try stack.client.get("/set/a/1?clientside=1&permanent=1")
        let good = try #require(stack.jar["gimlet-p"])
        let probe = HTTPClient(baseURL: stack.nginx.baseURL, scratch: stack.directory)
        for value in [String(good.dropLast(3)), "Z" + good.dropFirst(), "!!!", String(repeating: "A", count: 3000)] {
            let response = try probe.get("/get/a", headers: ["Cookie": "gimlet-p=\(value)"])
            #expect(response.status == 404, "mangled cookie: fresh session, not an error")
            let set = try probe.get("/set/b/2", headers: ["Cookie": "gimlet-p=\(value)"])
            #expect(set.status == 200)
            #expect(!set.headers("Set-Cookie").isEmpty)
        }
        #expect(stack.app.isRunning)
    }

    @Test func encryptedCookiesHideTheirValues() throws {
        let stack = try Stack(["--encryption-key", String(repeating: "5a", count: 32)])
        _ = try stack.client.get("/set/secret/PLAINTEXTVALUE?clientside=1")
        let cookie = try #require(stack.jar["gimlet-n"])
        var base64 = cookie.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        let decoded = String(decoding: Data(base64Encoded: base64) ?? Data(), as: UTF8.self)
        #expect(!decoded.contains("PLAINTEXTVALUE"))
        #expect(try stack.client.get("/get/secret").text == "PLAINTEXTVALUE")
    }

    @Test func refusesToStartWithoutASecretOrWithABadKey() throws {
        let directory = try TemporaryDirectory()
        let lab = try Repository.binary("session-lab")
        let environment = ["PATH": "/usr/bin:/bin"]
        let noSecret = try ManagedProcess("session-lab", executable: lab, arguments: ["--fastcgi", "127.0.0.1:19998"],
                                          outputPath: directory.file("a"), environment: environment)
        #expect(noSecret.waitForExit(seconds: 10) == 1)
        #expect(noSecret.output.contains("no session secret"))
        let badKey = try ManagedProcess(
            "session-lab", executable: lab,
            arguments: ["--fastcgi", "127.0.0.1:19998", "--secret", Self.secret, "--encryption-key", "xyz"],
            outputPath: directory.file("b"), environment: environment)
        #expect(badKey.waitForExit(seconds: 10) == 1)
        #expect(badKey.output.contains("openssl rand -hex 32"))
        #expect(badKey.output.split(separator: "\n").count == 1, "one line: \(badKey.output)")
    }
}
