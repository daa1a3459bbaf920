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

        #expect(try NotesAccounts.enter(client, name: "Api", password: "api password").status == 303)
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

    /// An async handler around a real async library: `POST /api/notes/import`
    /// awaits URLSession fetching from another local server (Python's
    /// http.server), then stores the text in the session, through nginx.
    @Test func importingANoteAwaitsURLSession() throws {
        let directory = try TemporaryDirectory("gimlet-notes-import")
        let files = directory.file("files")
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        try "fetched from afar".write(toFile: files + "/note.txt", atomically: true, encoding: .utf8)
        try String(repeating: "x", count: 70_000).write(toFile: files + "/big.txt", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let server = try ManagedProcess(
            "http.server", executable: try Tool.path("python3", package: "python3"),
            arguments: ["-m", "http.server", "--bind", "127.0.0.1", "--directory", files, String(port)],
            outputPath: directory.file("http-server.log"))
        defer { server.stop() }
        #expect(waitUntil(seconds: 10) { canConnect(port: port) }, "http.server did not start: \(server.output)")
        let origin = "http://127.0.0.1:\(port)"

        let stack = try AppBehindNginx(
            "notes", executable: try Repository.binary("notes"),
            environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": SessionLabBehindNginx.secret,
                          "GIMLET_DATA_DIR": directory.file("data"), "NOTES_IMPORT_ORIGINS": origin],
            directory: directory, probe: "/hello/x")
        defer { stack.app.stop() }
        let client = stack.client
        func token() throws -> String {
            try #require(try client.get("/").text.components(separatedBy: "\"").first { $0.count == 40 && $0.allSatisfy(\.isHexDigit) })
        }
        #expect(try NotesAccounts.enter(client, name: "Importer", password: "importer password").status == 303)
        let headers = ["Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": try token()]
        func importing(_ url: String) throws -> HTTPResult {
            try client.request("POST", "/api/notes/import", body: Array(#"{"url":"\#(url)"}"#.utf8), headers: headers)
        }

        let imported = try importing(origin + "/note.txt")
        #expect(imported.status == 201, "\(imported.text) \(stack.app.output)")
        #expect(imported.text == #"{"notes":["fetched from afar"]}"#)
        #expect(try importing(origin + "/missing.txt").status == 502, "the server answered 404")
        #expect(try importing(origin + "/big.txt").status == 502, "over 64 KiB")
        #expect(try importing("http://127.0.0.1:1/note.txt").status == 403, "an origin not listed")
        #expect(try importing("file:///etc/passwd").status == 400)
        server.stop()
        #expect(try importing(origin + "/note.txt").status == 502, "the server is gone")
        #expect(try client.get("/api/notes", headers: ["Accept": "application/json"]).text == #"{"notes":["fetched from afar"]}"#)
    }
}
