import Foundation
import Testing

/// The apps behind a real Apache, from deploy/apache/, over FastCGI and SCGI.
@Suite(.serialized) struct BehindApache {
    enum Proxy: String, CaseIterable, CustomTestStringConvertible {
        case fcgi = "mod_proxy_fcgi"
        case scgi = "mod_proxy_scgi"
        var testDescription: String { rawValue }
        var config: String { self == .fcgi ? "gimlet-fcgi.conf" : "gimlet-scgi.conf" }
        var option: String { self == .fcgi ? "--fastcgi" : "--scgi" }
    }

    final class Stack: @unchecked Sendable {
        // @unchecked: immutable after init.
        let directory: TemporaryDirectory
        let app: ManagedProcess
        let apache: Apache
        let client: HTTPClient

        init(_ proxy: Proxy, binary: String, extra: [String] = []) throws {
            directory = try TemporaryDirectory("gimlet-apache-app")
            let socket = directory.file("app.sock")
            app = try ManagedProcess(
                binary, executable: try Repository.binary(binary),
                arguments: [proxy.option, "unix:" + socket, "--socket-mode", "666", "--threads", "4"] + extra,
                outputPath: directory.file("app.log"),
                environment: ProcessInfo.processInfo.environment.merging(["GIMLET_DATA_DIR": directory.file("data")]) { $1 })
            apache = try Apache(socket: socket, config: proxy.config)
            var client = HTTPClient(baseURL: apache.baseURL, scratch: directory)
            client.cookieJar = directory.file("jar")
            self.client = client
            let probe = HTTPClient(baseURL: apache.baseURL, scratch: directory)
            guard waitUntil(seconds: 10, { (try? probe.get(binary == "hello" ? "/" : "/hello").status) == 200 }) else {
                throw SetupError("\(binary) did not answer through Apache: \(app.output) \(apache.errorLog)")
            }
        }

        deinit {
            apache.process.stop()
            app.stop()
        }
    }

    @Test(arguments: Proxy.allCases)
    func helloRoutesBodiesAndLoad(proxy: Proxy) throws {
        let stack = try Stack(proxy, binary: "hello", extra: ["--max-body", "2m"])
        let client = stack.client
        #expect(try client.get("/").text == "hello")
        #expect(try client.get("/hello/J%C3%BCrgen%20M?x=%41").text == "hello, Jürgen M")
        #expect(try client.get("/nope").status == 404)
        #expect(try client.request("DELETE", "/hello/x").status == 405)
        let env = try client.get("/env?q=a%20b").text
        #expect(env.contains("QUERY_STRING=q=a%20b"))
        var generator = SystemRandomNumberGenerator()
        let mebibyte = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let echoed = try client.request("POST", "/echo", body: mebibyte, headers: ["Content-Type": "application/x-test"])
        #expect(echoed.status == 200)
        #expect(echoed.body == mebibyte, "1 MiB both ways")
        // Past --body-buffer: spooled to a temporary file, and back whole.
        let binary = ["Content-Type": "application/octet-stream"]
        #expect(try client.request("POST", "/echo", body: mebibyte + [0], headers: binary).body == mebibyte + [0])
        // A form is parsed in memory: past --body-buffer it is refused (curl's default type).
        #expect(try client.request("POST", "/echo", body: mebibyte + [0]).status == 413)
        // Past the app's --max-body but within Apache's LimitRequestBody: the app's own 413.
        let tooLarge = try client.request("POST", "/echo", body: mebibyte + mebibyte + [0], headers: binary)
        #expect(tooLarge.status == 413 && tooLarge.text == "request body is larger than 2097152 bytes")
        let results = try client.parallelGets(count: 200, connections: 16) { "/hello/n\($0)" }
        #expect(results.enumerated().allSatisfy { $0.element.status == 200 && $0.element.body == "hello, n\($0.offset)" })
    }

    /// Apache passes the Host header as sent (with its port): same-origin
    /// POSTs from a browser pass, foreign origins do not.
    @Test(arguments: Proxy.allCases)
    func sameOriginPostsPass(proxy: Proxy) throws {
        let stack = try Stack(proxy, binary: "session-lab", extra: ["--secret", SessionLabBehindNginx.secret])
        let token = try stack.client.get("/csrf").text
        let form = Array("csrf_token=\(token)".utf8)
        for (origin, status) in [(stack.apache.baseURL, 200), ("http://127.0.0.1", 403), ("https://evil.example", 403)] {
            let response = try stack.client.request(
                "POST", "/csrf_check", body: form,
                headers: ["Origin": origin, "Content-Type": "application/x-www-form-urlencoded"])
            #expect(response.status == status, "Origin \(origin): \(response.text)")
        }
    }

    /// `Authorization` reaches the app through the recipes (mod_proxy_fcgi
    /// drops it unless told), Basic and Bearer; a password hashed and
    /// verified through a form.
    @Test(arguments: Proxy.allCases)
    func credentialsAndPasswordsThroughApache(proxy: Proxy) throws {
        let stack = try Stack(proxy, binary: "session-lab", extra: ["--secret", SessionLabBehindNginx.secret])
        try SignInBehindAWebServer.check(stack.client)
    }

    @Test(arguments: Proxy.allCases)
    func sessionsWithSeveralSetCookies(proxy: Proxy) throws {
        let stack = try Stack(proxy, binary: "session-lab", extra: ["--secret", SessionLabBehindNginx.secret])
        let client = stack.client
        #expect(try client.get("/set/a/1?permanent=1&clientside=1").text == "ok")
        #expect(try client.get("/set/b/2?permanent=0").text == "ok")
        #expect(try client.get("/get/a").text == "1")
        #expect(try client.get("/get/b").text == "2")
        #expect(try client.get("/counter").text == "1")
        let invalidated = try client.get("/invalidate")
        #expect(invalidated.headers("Set-Cookie").count == 2, "both cookies in one response: \(invalidated.headers)")
    }
}
