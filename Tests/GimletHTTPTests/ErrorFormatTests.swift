import Foundation
import Testing
@testable import GimletHTTP

@Suite struct ErrorsFollowAccept {
    @Test(arguments: [
        (nil, ErrorFormat.text),
        ("*/*", .text),
        ("text/plain", .text),
        // Chromium's navigation Accept.
        ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8", .html),
        ("application/json", .json),
        ("application/json, text/plain, */*", .json),            // axios
        ("application/problem+json", .json),
        ("text/html;q=0.5, application/json", .json),
        ("text/html, application/json;q=0.9", .html),
        ("application/json;q=0", .text),
    ] as [(String?, ErrorFormat)])
    func format(accept: String?, expected: ErrorFormat) {
        #expect(ErrorFormat(accept: accept) == expected)
    }

    /// A client that sends JSON and accepts anything reads JSON errors.
    @Test(arguments: [
        (nil, "application/json", ErrorFormat.json),
        ("*/*", "application/json; charset=utf-8", .json),
        (nil, "application/merge-patch+json", .json),
        ("text/plain", "application/json", .text),                 // asked for text
        ("text/html", "application/json", .html),                  // a browser's fetch asking for HTML
        (nil, "application/x-www-form-urlencoded", .text),
        (nil, nil, .text),
    ] as [(String?, String?, ErrorFormat)])
    func aJSONBodyMakesAJSONClient(accept: String?, contentType: String?, expected: ErrorFormat) {
        #expect(ErrorFormat(accept: accept, contentType: contentType) == expected)
    }

    func respond(_ error: HTTPError, accept: String?) -> Response {
        var environ = ["REQUEST_METHOD": "GET", "REQUEST_URI": "/x"]
        if let accept { environ["HTTP_ACCEPT"] = accept }
        return error.response(for: Request(environ: environ))
    }

    @Test func jsonErrorsParseAndKeepTheirHeaders() throws {
        let response = respond(HTTPError(.methodNotAllowed, "say \"GET\"\n", headers: ["Allow": "GET"]), accept: "application/json")
        #expect(response.status == .methodNotAllowed)
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(response.headers["Allow"] == "GET")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: [String: Any]])
        #expect(object["error"]?["status"] as? Int == 405)
        #expect(object["error"]?["message"] as? String == "say \"GET\"\n")
    }

    @Test func htmlErrorsEscapeTheMessage() {
        let response = respond(HTTPError(.badRequest, "<script>alert(1)</script>"), accept: "text/html")
        let html = String(decoding: response.body, as: UTF8.self)
        #expect(response.headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(html.contains("<title>400 Bad Request</title>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("<script>"))
    }

    @Test func otherClientsGetText() {
        let response = respond(HTTPError(.notFound), accept: "*/*")
        #expect(response.headers["Content-Type"] == "text/plain; charset=utf-8")
        #expect(String(decoding: response.body, as: UTF8.self) == "Not Found")
    }

    @Test func theRouterAnswersUnknownErrorsInTheAcceptedFormToo() throws {
        struct Boom: Error {}
        var router = Router()
        router.get("/boom") { _ in throw Boom() }
        let request = Request(environ: ["REQUEST_METHOD": "GET", "REQUEST_URI": "/boom", "HTTP_ACCEPT": "application/json"])
        let response = router.respond(to: request)
        #expect(response.status == .internalServerError)
        #expect(String(decoding: response.body, as: UTF8.self).contains("\"status\":500"))
        #expect(!String(decoding: response.body, as: UTF8.self).contains("Boom"), "no internals")
    }
}

@Suite struct DecodingJSONBodies {
    struct Note: Decodable, Equatable {
        var text: String
        var tags: [String]?
        var meta: Meta?
        struct Meta: Decodable, Equatable { var pinned: Bool }
    }

    func request(_ body: String, contentType: String? = "application/json") -> Request {
        var environ = ["REQUEST_METHOD": "POST", "REQUEST_URI": "/notes"]
        if let contentType { environ["CONTENT_TYPE"] = contentType }
        return Request(environ: environ, body: Array(body.utf8))
    }

    @Test func decodesAJSONBody() throws {
        #expect(try request(#"{"text":"hi","tags":["a"]}"#).decodeJSON(Note.self) == Note(text: "hi", tags: ["a"]))
        #expect(try request(#"{"text":"hi"}"#, contentType: "application/json; charset=utf-8").decodeJSON(Note.self).text == "hi")
        #expect(try request(#"{"text":"hi"}"#, contentType: "application/vnd.api+json").decodeJSON(Note.self).text == "hi")
    }

    @Test(arguments: [
        (#"{"text":"hi"}"#, "text/plain", 415, "expected a JSON body (Content-Type: application/json), not text/plain"),
        (#"{"text":"hi"}"#, nil, 415, "expected a JSON body (Content-Type: application/json)"),
        ("{not json", "application/json", 400, "bad JSON: not valid JSON"),
        ("", "application/json", 400, "bad JSON: not valid JSON"),
        (#"{"tags":[]}"#, "application/json", 400, "bad JSON: missing text"),
        (#"{"text":5}"#, "application/json", 400, "bad JSON: text is not a string"),
        (#"{"text":null}"#, "application/json", 400, "bad JSON: text is null, expected a string"),
        (#"{"text":"a","tags":[1]}"#, "application/json", 400, "bad JSON: tags[0] is not a string"),
        (#"{"text":"a","meta":{}}"#, "application/json", 400, "bad JSON: missing meta.pinned"),
    ] as [(String, String?, Int, String)])
    func refusesWithAShortReason(body: String, contentType: String?, status: Int, reason: String) {
        let error = #expect(throws: HTTPError.self) { try request(body, contentType: contentType).decodeJSON(Note.self) }
        #expect(error?.status.code == status)
        #expect(error?.message == reason)
    }
}
