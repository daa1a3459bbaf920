import Foundation
import Testing

/// Sign-in's parts through a real web server: `Authorization` credentials
/// (Basic, Bearer) and passwords hashed and verified (session-lab's
/// `/authorization`, `/password/hash`, `/password/verify`).
@Suite struct SignInBehindAWebServer {
    /// What every web server recipe must pass on, checked through `client`.
    static func check(_ client: HTTPClient) throws {
        let basic = "Basic " + Data("frodo:se cret:colon".utf8).base64EncodedString()
        #expect(try client.get("/authorization", headers: ["Authorization": basic]).text == "basic frodo se cret:colon")
        #expect(try client.get("/authorization", headers: ["Authorization": "Bearer abc.DEF-123_~+/="]).text
                == "bearer abc.DEF-123_~+/=")
        let missing = try client.get("/authorization")
        #expect(missing.status == 401 && missing.header("WWW-Authenticate") == "Basic realm=\"lab\"")
        for bad in ["Basic !!!", "Bearer a b", "Digest x", "Basic " + Data("no-colon".utf8).base64EncodedString()] {
            #expect(try client.get("/authorization", headers: ["Authorization": bad]).status == 401, "\(bad)")
        }

        func form(_ path: String, _ fields: [(String, String)]) throws -> HTTPResult { try client.postForm(path, fields) }
        let hashed = try form("/password/hash", [("password", "correct horse")])
        #expect(hashed.status == 200 && hashed.text.hasPrefix("$scrypt$ln=15,r=8,p=1$"), "\(hashed.status) \(hashed.text)")
        #expect(try form("/password/verify", [("password", "correct horse"), ("hash", hashed.text)]).status == 204)
        #expect(try form("/password/verify", [("password", "correct horsf"), ("hash", hashed.text)]).status == 403)
        #expect(try form("/password/verify", [("password", "x"), ("hash", "$scrypt$ln=25,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")])
            .status == 400, "a hash asking for gigabytes is refused, not computed")
        #expect(try form("/password/hash", [("password", String(repeating: "x", count: 2000))]).status == 400)

        // An account, signed in (throttle cleared on success).
        let account = "acct-\(UUID().uuidString.prefix(8))"
        #expect(try form("/signup/\(account)", [("password", "right one")]).status == 204)
        #expect(try form("/signin/\(account)", [("password", "right one")]).status == 204)
    }

    static func form(_ client: HTTPClient, _ path: String, _ fields: [(String, String)]) throws -> HTTPResult {
        try client.postForm(path, fields)
    }

    /// Sign-in attempts are counted in the store, per account and per
    /// client: five wrong passwords, then 429 with `Retry-After` (the right
    /// password included, unchecked); another client's account is not
    /// affected; twenty attempts from one client over many accounts are its
    /// limit. With two worker processes, both count together.
    @Test(arguments: [BackendsBehindNginx.Store.sqlite, .redis, .postgresql])
    func signInIsThrottledInTheStore(store: BackendsBehindNginx.Store) throws {
        let setup = try BackendsBehindNginx.Setup(store, extra: ["--workers", "2", "--threads", "2"])
        let client = setup.stack.client
        for _ in 0..<5 {
            #expect(try Self.form(client, "/signin/frodo", [("password", "wrong")]).status == 403)
        }
        let refused = try Self.form(client, "/signin/frodo", [("password", "wrong")])
        #expect(refused.status == 429, "the sixth attempt, whichever worker took each: \(refused.status) \(refused.text)")
        let retryAfter = try #require(Int(refused.header("Retry-After") ?? ""), "\(refused.headers("Retry-After"))")
        #expect((1...900).contains(retryAfter))

        var other = HTTPClient(baseURL: setup.stack.nginx.baseURL, scratch: setup.files)
        other.sourceAddress = "127.0.0.2"
        #expect(try Self.form(other, "/signin/sam", [("password", "wrong")]).status == 403, "another account, another client")
        var sprayer = HTTPClient(baseURL: setup.stack.nginx.baseURL, scratch: setup.files)
        sprayer.sourceAddress = "127.0.0.3"
        let statuses = try (0..<21).map { try Self.form(sprayer, "/signin/user\($0)", [("password", "wrong")]).status }
        #expect(statuses.prefix(20).allSatisfy { $0 == 403 } && statuses.last == 429, "twenty per client: \(statuses)")
        #expect(setup.stack.app.output.contains("security_event=sign_in_throttled"))
    }

    @Test(arguments: [false, true])
    func credentialsAndPasswordsThroughNginx(scgi: Bool) throws {
        let stack = try SessionLabBehindNginx.Stack(scgi: scgi)
        try Self.check(stack.client)
    }
}
