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

        func form(_ path: String, _ fields: [(String, String)]) throws -> HTTPResult {
            let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
                .joined(separator: "&")
            return try client.request("POST", path, body: Array(body.utf8),
                                      headers: ["Content-Type": "application/x-www-form-urlencoded"])
        }
        let hashed = try form("/password/hash", [("password", "correct horse")])
        #expect(hashed.status == 200 && hashed.text.hasPrefix("$scrypt$ln=15,r=8,p=1$"), "\(hashed.status) \(hashed.text)")
        #expect(try form("/password/verify", [("password", "correct horse"), ("hash", hashed.text)]).status == 204)
        #expect(try form("/password/verify", [("password", "correct horsf"), ("hash", hashed.text)]).status == 403)
        #expect(try form("/password/verify", [("password", "x"), ("hash", "$scrypt$ln=25,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")])
            .status == 400, "a hash asking for gigabytes is refused, not computed")
        #expect(try form("/password/hash", [("password", String(repeating: "x", count: 2000))]).status == 400)
    }

    @Test(arguments: [false, true])
    func credentialsAndPasswordsThroughNginx(scgi: Bool) throws {
        let stack = try SessionLabBehindNginx.Stack(scgi: scgi)
        try Self.check(stack.client)
    }
}
