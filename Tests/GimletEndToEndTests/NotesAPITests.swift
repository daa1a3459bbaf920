import Foundation
import Testing

/// examples/notes' JSON API through nginx: JSON bodies decoded, and errors
/// in the form each client accepts (JSON, HTML, text).
@Suite(.serialized) struct NotesAPI {
    @Test func jsonInJsonOutAndErrorsInTheAcceptedForm() throws {
        let directory = try TemporaryDirectory("gimlet-notes-api")
        let stack = try AppBehindNginx(
            "notes", executable: try Repository.binary("notes"),
            environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": SessionLabBehindNginx.secret,
                          "GIMLET_DATA_DIR": directory.file("data")],
            directory: directory, probe: "/hello/x")
        defer { stack.app.stop() }
        let client = stack.client
        func token() throws -> String {
            try #require(try client.get("/").text.components(separatedBy: "\"").first { $0.count == 40 && $0.allSatisfy(\.isHexDigit) })
        }
        let json = ["Accept": "application/json"]

        let anonymous = try client.get("/api/notes", headers: json)
        #expect(anonymous.status == 403)
        #expect(anonymous.header("Content-Type") == "application/json")
        #expect(anonymous.text.contains(#""message":"Sign in first.""#), "\(anonymous.text)")
        #expect(try client.get("/api/notes", headers: ["Accept": "text/html"]).text.contains("<title>403 Forbidden</title>"))
        #expect(try client.get("/api/notes").text == "Sign in first.")

        let login = try client.request("POST", "/login", body: Array("csrf_token=\(try token())&name=Api".utf8),
                                       headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(login.status == 303)
        let csrf = try token()
        let created = try client.request("POST", "/api/notes", body: Array(#"{"text":"from JSON"}"#.utf8),
                                         headers: json.merging(["Content-Type": "application/json", "X-CSRF-Token": csrf]) { $1 })
        #expect(created.status == 201, "\(created.text)")
        #expect(created.text == #"{"notes":["from JSON"]}"#)

        let bad = try client.request("POST", "/api/notes", body: Array(#"{"text":5}"#.utf8),
                                     headers: json.merging(["Content-Type": "application/json", "X-CSRF-Token": csrf]) { $1 })
        #expect(bad.status == 400)
        #expect(bad.text.contains(#""message":"bad JSON: text is not a string""#), "\(bad.text)")
        let wrongType = try client.request("POST", "/api/notes", body: Array("text=x".utf8),
                                           headers: json.merging(["Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf]) { $1 })
        #expect(wrongType.status == 415, "\(wrongType.text)")
        let noToken = try client.request("POST", "/api/notes", body: Array(#"{"text":"forged"}"#.utf8),
                                         headers: json.merging(["Content-Type": "application/json"]) { $1 })
        #expect(noToken.status == 403)
        #expect(try client.get("/api/notes", headers: json).text == #"{"notes":["from JSON"]}"#)
    }
}
