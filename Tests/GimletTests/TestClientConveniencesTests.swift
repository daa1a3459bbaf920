import Foundation
@testable import Gimlet
import GimletHTTP
import GimletTesting
import Testing

/// What a test of an app needs to be short: forms, JSON, the session's CSRF
/// token, and errors in the form a JSON client reads.
@Suite struct TestClientConveniences {
    struct Todo: Codable, Equatable { var text: String; var done: Bool }

    static func app() throws -> (Router, SessionConfiguration) {
        let configuration = try SessionConfiguration(secrets: [Lab.secret], backend: MemoryBackend())
        var router = Router()
        router.use(try SessionMiddleware(configuration))
        router.post("/echo") { request in
            try request.session.verifyCSRF(request)
            return .text("\(request.form["name"] ?? "-") / \(request.form["note"] ?? "-")")
        }
        router.post("/todos") { request in
            try request.session.verifyCSRF(request)
            var todo = try request.decodeJSON(Todo.self)
            todo.done = true
            return try .json(["todo": todo], status: .created)
        }
        router.get("/user") { request in .text(try request.session.get("user")?.text ?? "nobody") }
        router.get("/unsafe") { _ in
            var response = Response.text("x")
            response.headers["X-Split"] = "a\r\nSet-Cookie: evil=1"
            return response
        }
        return (router, configuration)
    }

    @Test func formsAndJSONInOneLineEach() throws {
        let (router, configuration) = try Self.app()
        let client = TestClient(router)
        let token = try client.csrfToken(configuration)
        #expect(token.count == 40)
        let echoed = client.post("/echo", form: ["name": "Ada & Co", "note": "100% = 1+1 ü", "csrf_token": token])
        #expect(echoed.status == 200 && echoed.text == "Ada & Co / 100% = 1+1 ü", "\(echoed.text)")
        #expect(client.post("/echo", form: ["name": "forged"]).status == 403, "no token, refused")

        let created = try client.post("/todos", json: Todo(text: "milk", done: false), headers: ["X-CSRF-Token": token])
        #expect(created.status == 201 && created.header("content-type") == "application/json")
        #expect(try created.json([String: Todo].self) == ["todo": Todo(text: "milk", done: true)])
        #expect(created.text == #"{"todo":{"done":true,"text":"milk"}}"#, "keys sorted: \(created.text)")
    }

    /// The same value is the same bytes in every process: keys sorted
    /// (unsorted, Foundation's order changes with each process's hash seed).
    @Test func jsonKeysAreSorted() throws {
        struct Wide: Encodable { var h = 1, g = 2, f = 3, e = 4, d = 5, c = 6, b = 7, a = 8 }
        let body = String(decoding: try Response.json(Wide()).body, as: UTF8.self)
        #expect(body == #"{"a":8,"b":7,"c":6,"d":5,"e":4,"f":3,"g":2,"h":1}"#)
    }

    @Test func aTestSetsTheSceneThroughTheSession() throws {
        let (router, configuration) = try Self.app()
        let client = TestClient(router)
        try client.withSession(configuration) { try $0.set("user", "frodo") }
        #expect(client.get("/user").text == "frodo")
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try client.withSession(configuration) { session in
                try session.set("user", "sam")
                throw Refused()
            }
        }
        #expect(client.get("/user").text == "frodo", "a body that throws keeps nothing")
    }

    /// The host's own answers (413, 400) follow the same negotiation as the
    /// router's: a JSON client reads JSON, whether it says so in `Accept`
    /// or only sends JSON.
    @Test func theHostsOwnErrorsFollowTheClient() throws {
        let (router, configuration) = try Self.app()
        let client = TestClient(router)
        let token = try client.csrfToken(configuration)
        // A handler's 400 for a client that sends JSON and no Accept.
        let bad = client.request("POST", "/todos", body: Array(#"{"text":5}"#.utf8), contentType: "application/json",
                                 headers: ["X-CSRF-Token": token])
        #expect(bad.status == 400 && bad.header("Content-Type") == "application/json", "\(bad.text)")
        #expect(bad.text.contains("text is not a string"))
        client.maxBodyBytes = 16
        let big = try client.post("/todos", json: Todo(text: String(repeating: "x", count: 40), done: false))
        #expect(big.status == 413 && big.header("Content-Type") == "application/json", "\(big.text)")
        #expect(big.text.contains(#""status":413"#))
        let asked = client.request("POST", "/todos", body: Array(repeating: 0x61, count: 40), contentType: "text/plain",
                                   headers: ["Accept": "application/json"])
        #expect(asked.status == 413 && asked.header("Content-Type") == "application/json")
        let browser = client.request("POST", "/todos", body: Array(repeating: 0x61, count: 40), contentType: "text/plain",
                                     headers: ["Accept": "text/html"])
        #expect(browser.status == 413 && browser.text.contains("<title>413 Content Too Large</title>"), "\(browser.text)")
        let unsafe = client.get("/unsafe", headers: ["Accept": "application/json"])
        #expect(unsafe.status == 500 && unsafe.header("Content-Type") == "application/json" && unsafe.setCookies.isEmpty,
                "\(unsafe.text)")
        #expect(client.get("/unsafe").text == "Internal Server Error")
        client.environ["CONTENT_LENGTH"] = "12x"
        let invalid = client.request("POST", "/todos", body: Array("{}".utf8), contentType: "application/json")
        #expect(invalid.status == 400 && invalid.header("Content-Type") == "application/json", "\(invalid.text)")
    }
}
