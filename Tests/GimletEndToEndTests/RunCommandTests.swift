import Foundation
import Testing

/// The README's run command (scripts/run-example, which `make run` calls
/// after building), on a free port and its own run directory.
@Suite(.serialized) struct RunCommand {
    @Test func servesNotesBehindNginxWithSessionsInSQLite() throws {
        let directory = try TemporaryDirectory("gimlet-run")
        let port = try freeLoopbackPort()
        let run = try startRunExample(port: port, directory: directory)
        defer { stop(run, directory: directory) }
        var client = HTTPClient(baseURL: "http://127.0.0.1:\(port)", scratch: directory)
        client.cookieJar = directory.file("jar")
        guard waitUntil(seconds: 60, { (try? client.get("/hello/world").status) == 200 }) else {
            Issue.record("run-example did not serve: \(run.output)")
            return
        }
        #expect(try client.get("/hello/world").text == "hello, world")
        let stylesheet = try client.get("/static/notes.css")
        #expect(stylesheet.status == 200 && stylesheet.header("Content-Type")?.hasPrefix("text/css") == true,
                "nginx serves the notes app's static files: \(stylesheet.status) \(stylesheet.headers)")

        #expect(try client.get("/").status == 200)
        let signUp = try NotesAccounts.enter(client, name: "Frodo", password: "the ring is mine")
        #expect(signUp.status == 303, "\(signUp.text)")
        let page = try client.get("/")
        let newToken = try #require(csrfToken(in: page.text))
        #expect(page.text.contains("Welcome, Frodo."))
        #expect(try client.request("POST", "/notes", body: Array("csrf_token=\(newToken)&text=buy+rope".utf8),
                                   headers: ["Content-Type": "application/x-www-form-urlencoded"]).status == 303)
        #expect(try client.get("/").text.contains("<li>buy rope</li>"))
        #expect(try client.request("POST", "/notes", body: Array("text=forged".utf8),
                                   headers: ["Content-Type": "application/x-www-form-urlencoded"]).status == 403)
        #expect(FileManager.default.fileExists(atPath: directory.file("sessions.sqlite")), "the embedded default is SQLite")
        #expect(FileManager.default.fileExists(atPath: directory.file("notes.sqlite")), "the app's own table, beside the sessions")
        // Both access logs, nginx's and the app's, name the last request by one id.
        let id = try #require(try client.get("/hello/world").header("X-Request-Id"))
        #expect(waitUntil(seconds: 5) {
            let nginx = (try? String(contentsOfFile: directory.file("nginx-access.log"), encoding: .utf8)) ?? ""
            let app = (try? String(contentsOfFile: directory.file("access.log"), encoding: .utf8)) ?? ""
            return nginx.contains("request_id=\(id)") && app.contains("request_id=\(id) ")
        }, "\(id) in \(directory.path)")
    }

    /// A port that is taken: the command fails with nginx's reason and names
    /// GIMLET_PORT, instead of saying "serving".
    @Test func failsWithNginxsReasonWhenThePortIsTaken() throws {
        let directory = try TemporaryDirectory("gimlet-run")
        let blocker = try Nginx(socket: directory.file("unused.sock"))
        let run = try startRunExample(port: blocker.port, directory: directory)
        defer { stop(run, directory: directory) }
        #expect(run.waitForExit(seconds: 60) == 1, "\(run.output)")
        #expect(run.output.contains("Address already in use"), "nginx's reason: \(run.output)")
        #expect(run.output.contains("GIMLET_PORT"))
        #expect(!run.output.contains("serving notes"), "\(run.output)")
    }

    /// `scripts/run-example APP` (an example's name or an app's path) on
    /// `port`, its run directory `directory`.
    static func startRunExample(_ app: String = "notes", port: Int, directory: TemporaryDirectory) throws -> ManagedProcess {
        _ = try Tool.nginx()
        var environment = ProcessInfo.processInfo.environment
        environment["GIMLET_PORT"] = "\(port)"
        environment["GIMLET_RUN_DIR"] = directory.path
        return try ManagedProcess(
            "run-example", executable: "/bin/bash",
            arguments: [Repository.root.appendingPathComponent("scripts/run-example").path, app],
            outputPath: directory.file("run.log"), environment: environment)
    }

    func startRunExample(port: Int, directory: TemporaryDirectory) throws -> ManagedProcess {
        try Self.startRunExample(port: port, directory: directory)
    }

    func stop(_ run: ManagedProcess, directory: TemporaryDirectory) { Self.stop(run, directory: directory) }

    /// Stops the script with SIGTERM, which must stop its nginx and app too
    /// (what a user's Ctrl-C or `kill` does); whatever is left is stopped by
    /// its PID file, so a failing test leaves nothing behind.
    static func stop(_ run: ManagedProcess, directory: TemporaryDirectory, app: String = "notes") {
        let children = ["nginx.pid", app + ".pid"].compactMap { file in
            (try? String(contentsOfFile: directory.file(file), encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        run.stop()
        #expect(waitUntil(seconds: 10) { children.allSatisfy { !processIsAlive($0) } },
                "SIGTERM to the run command stops its nginx and app: \(children)")
        for pid in children where processIsAlive(pid) {
            kill(pid, SIGKILL)
        }
    }

    /// The value of the page's hidden `csrf_token` field.
    func csrfToken(in html: String) -> String? {
        html.components(separatedBy: "\"").first { $0.count == 40 && $0.allSatisfy(\.isHexDigit) }
    }
}
