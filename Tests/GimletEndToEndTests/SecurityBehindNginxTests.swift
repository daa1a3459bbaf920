import Foundation
import Testing

/// The security defects of issue 29, each shown through a real nginx in
/// front of session-lab (and, where a store is involved, a real store).
@Suite struct SecurityBehindNginx {
    /// A copied cookie stops counting once its channel has been idle for
    /// longer than the channel's TTL, measured from the cookie's last issue:
    /// its client-side values too, checked from the cookie alone. A browser
    /// that keeps using the session keeps it, since each renewal re-issues
    /// the cookie. (Before the fix, the copy kept its client-side values for
    /// ever.)
    @Test func anIdleCopiedCookieBringsBackNothingNotEvenItsClientSideValues() throws {
        // Renewal at half a TTL: 1 s for the browser-session channel (TTL 3)
        // and 2 s for the permanent one (TTL 4); whole seconds.
        let stack = try SessionLabBehindNginx.Stack(environment: ["GIMLET_SESSION_TTL": "3", "GIMLET_PERMANENT_TTL": "4"])
        let browser = stack.client
        #expect(try browser.get("/set/elf/legolas?permanent=0&clientside=1").text == "ok")
        #expect(try browser.get("/set/ring/one?permanent=1&clientside=1").text == "ok")
        let copied = stack.cookieHeader
        let thief = HTTPClient(baseURL: stack.nginx.baseURL, scratch: stack.directory)
        #expect(try thief.get("/get/elf", headers: ["Cookie": copied]).text == "legolas", "a fresh copy still counts")

        // The browser goes on using its session (the waits are the point:
        // cookies carry whole seconds); the copy stays as it was.
        for _ in 0..<4 {
            Thread.sleep(forTimeInterval: 1.1)
            #expect(try browser.get("/get/elf").text == "legolas", "a session in use is renewed, not expired")
        }
        let stale = try thief.get("/get/elf", headers: ["Cookie": copied])
        #expect(stale.status == 404, "the idle copy's browser-session value is gone: \(stale.text)")
        #expect(stale.headers("Set-Cookie").contains { $0.hasPrefix("gimlet-n=;") }, "and its cookie is cleared")
        #expect(try thief.get("/get/ring", headers: ["Cookie": copied]).status == 404,
                "the idle copy's permanent value is gone")
        #expect(try browser.get("/get/ring").text == "one", "the browser that kept using it keeps both")
        #expect(try browser.get("/get/elf").text == "legolas")
    }

    /// Under the default revocation check, a bound session whose check cannot
    /// run (Redis is stopped) never reaches a handler: 503 before it, so a
    /// revoked session's thief causes nothing while the store is down. An
    /// unbound session's client-side reads need no store and go on. (Before
    /// the fix, the handler ran on the client-side values and only its
    /// answer became 503.)
    @Test func aBoundSessionWhoseCheckCannotRunNeverReachesAHandler() throws {
        let setup = try BackendsBehindNginx.Setup(.redis, options: "?timeout_ms=300")
        let (stack, redis) = (setup.stack, try #require(setup.redis))
        var bound = HTTPClient(baseURL: stack.nginx.baseURL, scratch: setup.files)
        bound.cookieJar = setup.files.file("bound.cookies")
        #expect(try bound.get("/login/42").text == "ok")
        #expect(try bound.get("/set/theme/dark?clientside=1").text == "ok")
        var unbound = HTTPClient(baseURL: stack.nginx.baseURL, scratch: setup.files)
        unbound.cookieJar = setup.files.file("unbound.cookies")
        #expect(try unbound.get("/set/theme/light?clientside=1").text == "ok")
        let probe = HTTPClient(baseURL: stack.nginx.baseURL, scratch: setup.files)  // no cookies: no check
        let runsBefore = try #require(Int(try probe.get("/runs").text))

        redis.stop()
        for path in ["/get/theme", "/hello", "/set/theme/light?clientside=1"] {
            let answer = try bound.get(path)
            #expect(answer.status == 503, "\(path) of a bound session with the store down: \(answer.status) \(answer.text)")
        }
        #expect(try probe.get("/runs").text == String(runsBefore), "no handler ran for the bound session")
        #expect(try unbound.get("/get/theme").text == "light", "an unbound client-side read needs no store")
        #expect(try probe.get("/runs").text == String(runsBefore + 1))

        try redis.restart()  // empty (no persistence): the binding's marker is gone, as after a revocation
        #expect(waitUntil(seconds: 10) { (try? bound.get("/get/theme").status) == 404 },
                "once the store answers, the session is found revoked, its client-side value gone too")
    }

    /// Behind a proxy that ends TLS and talks plain HTTP to nginx, nginx
    /// passes no `HTTPS`: with `cookie_secure=always` the cookies carry
    /// `Secure` all the same. (Before the fix there was no such setting.)
    @Test(arguments: [false, true])
    func secureCanBeForcedBehindATLSTerminatingProxy(scgi: Bool) throws {
        let stack = try SessionLabBehindNginx.Stack(scgi: scgi, environment: ["GIMLET_COOKIE_SECURE": "always"])
        let answer = try stack.client.get("/set/ring/one?permanent=1&clientside=1")
        let cookie = try #require(answer.headers("Set-Cookie").first { $0.hasPrefix("gimlet-p=") })
        #expect(cookie.contains("; Secure"), "\(cookie)")
        let plain = try SessionLabBehindNginx.Stack(scgi: scgi)
        let unforced = try plain.client.get("/set/ring/one?permanent=1&clientside=1").headers("Set-Cookie")
        #expect(unforced.allSatisfy { !$0.contains("Secure") }, "auto, over plain HTTP: no Secure")
    }

    /// `__Host-` cookie names need Secure, `Path=/` and no `Domain`: refused
    /// at start without `cookie_secure=always`, and sent as browsers keep
    /// them with it, over HTTPS, where the TLS recipe also sends HSTS.
    @Test func hostPrefixedCookiesOverTheTLSRecipe() throws {
        let hostOnly = ["GIMLET_COOKIE_NAME_PERMANENT": "__Host-gimlet-p", "GIMLET_COOKIE_NAME_SESSION": "__Host-gimlet-n"]
        let directory = try TemporaryDirectory("gimlet-host-cookies")
        let refused = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "127.0.0.1:1", "--secret", SessionLabBehindNginx.secret, "--backend", "memory:"],
            outputPath: directory.file("refused.log"),
            environment: ProcessInfo.processInfo.environment.merging(hostOnly) { $1 })
        #expect(refused.waitForExit(seconds: 15) == 1, "\(refused.output)")
        #expect(refused.output.contains("__Host-") && refused.output.contains("GIMLET_COOKIE_SECURE=always"), "\(refused.output)")
        let port = try freeLoopbackPort()
        let app = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "127.0.0.1:\(port)", "--secret", SessionLabBehindNginx.secret, "--backend", "memory:"],
            outputPath: directory.file("lab.log"),
            environment: ProcessInfo.processInfo.environment.merging(hostOnly.merging(["GIMLET_COOKIE_SECURE": "always"]) { $1 }) { $1 })
        defer { app.stop() }
        #expect(waitUntil(seconds: 10) { canConnect(port: port) }, "\(app.output)")
        let recipe = try UpstreamRecipe(ports: [port], directory: directory)
        let client = recipe.client()
        let answer = try client.get("/set/ring/one?permanent=1&clientside=1")
        #expect(answer.header("Strict-Transport-Security") == "max-age=31536000", "the TLS recipe sends HSTS")
        let cookie = try #require(answer.headers("Set-Cookie").first { $0.hasPrefix("__Host-gimlet-p=") }, "\(answer.headers("Set-Cookie"))")
        #expect(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "\(cookie)")
        #expect(try client.get("/get/ring").text == "one", "curl's jar keeps and sends the __Host- cookie back")
    }

    /// The embedded store's files are the app's user's alone: the data
    /// directory 0700, the database and its -wal and -shm files 0600, so a
    /// web server sharing the app's group (spawn-fcgi's `-g www-data`)
    /// cannot read sessions. (Before the fix: 0755 and 0644, the umask's.)
    @Test func theSQLiteFilesAreTheAppsUsersAlone() throws {
        let stack = try SessionLabBehindNginx.Stack()
        #expect(try stack.client.get("/set/cart/ring?clientside=0").text == "ok")
        let data = stack.directory.file("data")
        func mode(_ path: String) throws -> Int {
            try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int, "\(path)")
        }
        #expect(try mode(data) == 0o700)
        for file in ["sessions.sqlite", "sessions.sqlite-wal", "sessions.sqlite-shm"] {
            #expect(try mode(data + "/" + file) == 0o600, "\(file)")
        }
    }

    /// Forged cookies from one client are logged a few times a minute, and
    /// do not hide another client's: the limit is per client as well as per
    /// kind. The status page counts every one, logged or not. (Before the
    /// fix, ten lines of one client used up the minute's allowance for
    /// everyone, and nothing counted them.)
    @Test func oneClientsFloodHidesNobodyElsesEvents() throws {
        let stack = try SessionLabBehindNginx.Stack(["--status-path", "/-/status"])
        let forged = ["Cookie": "gimlet-p=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
        for _ in 0..<12 { #expect(try stack.client.get("/get/a", headers: forged).status == 404) }
        var other = HTTPClient(baseURL: stack.nginx.baseURL, scratch: stack.directory)
        other.sourceAddress = "127.0.0.2"
        #expect(try other.get("/get/a", headers: forged).status == 404)
        func lines(from client: String) -> Int {
            stack.app.output.split(separator: "\n")
                .filter { $0.contains("security_event=rejected_cookie") && $0.contains("client=\(client) ") }.count
        }
        #expect(waitUntil(seconds: 5) { lines(from: "127.0.0.2") == 1 }, "the other client's event is logged: \(stack.app.output)")
        #expect(lines(from: "127.0.0.1") == 3, "three lines for the flooding client")
        let status = try stack.client.get("/-/status").text
        #expect(status.contains("\"rejected_cookie\":13"), "every event counted: \(status)")
        let metrics = try stack.client.get("/-/status?format=prometheus").text
        #expect(metrics.contains("gimlet_security_events_total{kind=\"rejected_cookie\"} 13"), "\(metrics)")
    }

    /// A CSRF token learned before sign-in is worthless after it: both
    /// `regenerateID()` and `bind(toUser:)` replace it. (Before the fix both
    /// kept `_csrft_`.)
    @Test(arguments: ["/regenerate", "/login/42"])
    func theCSRFTokenChangesAtSignIn(signIn: String) throws {
        let stack = try SessionLabBehindNginx.Stack()
        func check(_ token: String) throws -> Int {
            try stack.client.request("POST", "/csrf_check", body: Array("csrf_token=\(token)".utf8),
                                     headers: ["Content-Type": "application/x-www-form-urlencoded"]).status
        }
        let before = try stack.client.get("/csrf").text
        #expect(try check(before) == 200)
        #expect(try stack.client.get(signIn).text == "ok")
        let after = try stack.client.get("/csrf").text
        #expect(after.count == 40 && after != before, "a new token after \(signIn)")
        #expect(try check(before) == 403, "the token from before \(signIn) is refused")
        #expect(try check(after) == 200)
    }
}
