import Foundation
import Testing

/// examples/notes' accounts through nginx, as curl with cookie jars (one
/// per browser): sign-up with a password, sign-in throttled in the session
/// store, notes in the app's own SQLite table that survive sign-out and
/// follow the account to another browser, and the sessions page with
/// "sign out everywhere else".
@Suite(.serialized) struct NotesAccounts {
    static func start(_ directory: TemporaryDirectory) throws -> AppBehindNginx {
        try AppBehindNginx(
            "notes", executable: try Repository.binary("notes"),
            environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": SessionLabBehindNginx.secret,
                          "GIMLET_DATA_DIR": directory.file("data")],
            directory: directory, probe: "/hello/x")
    }

    /// Signs `client` up (or in, `path: "/login"`) as `name`; the form's answer.
    static func enter(_ client: HTTPClient, _ path: String = "/signup", name: String, password: String) throws -> HTTPResult {
        try client.postForm(path, [("csrf_token", try client.csrfToken()), ("name", name), ("password", password)])
    }

    static func notes(_ page: HTTPResult) -> [String] {
        page.text.components(separatedBy: "<li>").dropFirst().compactMap { $0.components(separatedBy: "</li>").first }
    }

    @Test func accountsKeepNotesAcrossSignOutAndBrowsers() throws {
        let directory = try TemporaryDirectory("gimlet-notes-accounts")
        let stack = try Self.start(directory)
        defer { stack.app.stop() }
        let laptop = stack.client
        var phone = stack.client
        phone.cookieJar = directory.file("phone.jar")
        var stranger = stack.client
        stranger.cookieJar = directory.file("stranger.jar")

        let made = try Self.enter(laptop, name: "Ada", password: "correct horse")
        #expect(made.status == 303, "\(made.status) \(made.text) \(stack.app.output)")
        #expect(try laptop.get("/").text.contains("Welcome, Ada. Your account is ready."))
        #expect(try laptop.postForm("/notes", [("csrf_token", try laptop.csrfToken()), ("text", "buy <rope>")]).status == 303)
        #expect(Self.notes(try laptop.get("/")) == ["buy &lt;rope&gt;"])

        let taken = try Self.enter(stranger, name: "ada", password: "another one")
        #expect(taken.status == 409 && taken.text.contains("is taken"), "a name in another case is the same name: \(taken.status)")
        #expect(try Self.enter(stranger, name: "Eve", password: "short").status == 400, "a password under 8 characters")
        #expect(try Self.enter(stranger, name: String(repeating: "n", count: 41), password: "long enough").status == 400)
        let wrong = try Self.enter(phone, "/login", name: "Ada", password: "correct horsf")
        #expect(wrong.status == 403 && wrong.text.contains("Wrong name or password."), "\(wrong.status) \(wrong.text)")
        #expect(wrong.text.contains("form method=post action=/login"), "the refusal shows the form again")
        let nobody = try Self.enter(phone, "/login", name: "Nobody", password: "correct horse")
        #expect(nobody.status == 403 && nobody.text.contains("Wrong name or password."), "an unknown name reads the same")

        // The phone signs in (any case): the account's notes are there.
        #expect(try Self.enter(phone, "/login", name: "ADA", password: "correct horse").status == 303)
        let phonePage = try phone.get("/")
        #expect(phonePage.text.contains("Welcome back, Ada.") && phonePage.text.contains("Signed in as <b>Ada</b>"))
        #expect(Self.notes(phonePage) == ["buy &lt;rope&gt;"])
        #expect(try Self.enter(stranger, name: "Bob", password: "bob's password").status == 303)
        #expect(try stranger.get("/").text.contains("No notes yet."), "another account sees none of Ada's notes")
        #expect(try stranger.get("/api/notes").text == #"{"notes":[]}"#)

        // The sessions page lists both browsers, this one marked; "sign out everywhere else".
        let sessions = try laptop.get("/sessions")
        #expect(sessions.text.components(separatedBy: "</li>").count - 1 == 2, "\(sessions.text)")
        #expect(sessions.text.contains("<li class=current><b>This browser</b>") && sessions.text.contains("curl/"))
        let others = try laptop.postForm("/sessions/others", [("csrf_token", try laptop.csrfToken(from: "/sessions"))])
        #expect(others.status == 303 && others.header("Location") == "/sessions")
        let after = try laptop.get("/sessions")
        #expect(after.text.contains("Signed out 1 other session.") && after.text.components(separatedBy: "</li>").count - 1 == 1, "\(after.text)")
        #expect(!after.text.contains("Sign out everywhere else"), "no other session left to sign out")
        #expect(try phone.get("/").text.contains("form method=post action=/login"), "the phone is signed out")
        #expect(try phone.get("/api/notes").status == 403)
        #expect(try stranger.get("/api/notes").status == 200, "Bob's session is not Ada's")

        // Signing out keeps the notes for the next sign-in.
        #expect(try laptop.postForm("/logout", [("csrf_token", try laptop.csrfToken())]).status == 303)
        let out = try laptop.get("/")
        #expect(out.text.contains("Your notes and attachments are kept for your next sign-in.") && Self.notes(out).isEmpty, "\(out.text)")
        #expect(try laptop.get("/sessions").status == 303, "signed out: no sessions page")
        #expect(try Self.enter(laptop, "/login", name: "Ada", password: "correct horse").status == 303)
        #expect(Self.notes(try laptop.get("/")) == ["buy &lt;rope&gt;"])

        // Accounts and notes are in the app's own file, private to its user.
        var status = stat()
        #expect(stat(directory.file("data/notes.sqlite"), &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(FileManager.default.fileExists(atPath: directory.file("data/sessions.sqlite")))
        #expect(try stranger.postForm("/notes", [("text", "forged")]).status == 403, "no CSRF token")
    }

    /// Attachments through a file input's multipart form: listed, downloaded
    /// whole by their account (with a range), a 404 for another account and
    /// for a visitor, kept over sign-out; the browser's filename only shown.
    @Test func attachmentsAreTheAccountsAlone() throws {
        let directory = try TemporaryDirectory("gimlet-notes-attachments")
        let stack = try Self.start(directory)
        defer { stack.app.stop() }
        let owner = stack.client
        var other = stack.client
        other.cookieJar = directory.file("other.jar")
        #expect(try Self.enter(owner, name: "Ada", password: "correct horse").status == 303)
        #expect(try Self.enter(other, name: "Bob", password: "bob's password").status == 303)
        let file = directory.file("../../etc report.txt".replacingOccurrences(of: "/", with: "_"))
        let bytes = (0..<300_000).map { UInt8($0 % 251) }
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        let attached = try owner.multipart("/attachments", fields: [("csrf_token", try owner.csrfToken())], files: [("file", file)])
        #expect(attached.status == 303, "\(attached.status) \(attached.text) \(stack.app.output.suffix(500))")
        let page = try owner.get("/").text
        #expect(page.contains("Attached .._.._etc report.txt."), "\(page)")
        let link = try #require(page.components(separatedBy: "href=\"/attachments/").dropFirst().first?.components(separatedBy: "\"").first)
        let download = try owner.get("/attachments/" + link)
        #expect(download.status == 200 && download.body == bytes, "\(download.status) \(download.body.count) B")
        #expect(download.header("Content-Type") == "application/octet-stream")
        #expect(download.header("Content-Disposition")?.hasPrefix("attachment; filename=\".._.._etc report.txt\"") == true)
        let range = try owner.get("/attachments/" + link, headers: ["Range": "bytes=1000-1009"])
        #expect(range.status == 206 && range.body == Array(bytes[1000..<1010]))
        #expect(try other.get("/attachments/" + link).status == 404, "another account's attachment is as missing")
        let visitor = HTTPClient(baseURL: owner.baseURL, scratch: directory)
        #expect(try visitor.get("/attachments/" + link).status == 404)
        // A forged form stores nothing.
        let forged = try other.multipart("/attachments", fields: [("csrf_token", String(repeating: "0", count: 40))], files: [("file", file)])
        #expect(forged.status == 403)
        #expect(!(try other.get("/").text.contains("/attachments/")), "Bob has no attachment")
        // Signing out keeps them for the next sign-in.
        #expect(try owner.postForm("/logout", [("csrf_token", try owner.csrfToken())]).status == 303)
        #expect(try owner.get("/attachments/" + link).status == 404, "signed out: not downloadable")
        #expect(try Self.enter(owner, "/login", name: "Ada", password: "correct horse").status == 303)
        #expect(try owner.get("/attachments/" + link).body == bytes)
        // Stored under a random name in the data directory, nothing under the browser's.
        let stored = try FileManager.default.contentsOfDirectory(atPath: directory.file("data/files"))
        #expect(stored == [link], "\(stored)")
    }

    /// /notes/live sends the account's new notes as server-sent events: what
    /// another browser of the account adds, after the newest the page showed;
    /// nothing of another account's; a 403 for a visitor.
    @Test func liveNotesFollowTheAccount() throws {
        let directory = try TemporaryDirectory("gimlet-notes-live")
        let stack = try Self.start(directory)
        defer { stack.app.stop() }
        let laptop = stack.client
        var phone = stack.client
        phone.cookieJar = directory.file("phone.jar")
        var other = stack.client
        other.cookieJar = directory.file("other.jar")
        #expect(try Self.enter(laptop, name: "Ada", password: "correct horse").status == 303)
        #expect(try Self.enter(phone, "/login", name: "Ada", password: "correct horse").status == 303)
        #expect(try Self.enter(other, name: "Bob", password: "bob's password").status == 303)
        #expect(try laptop.postForm("/notes", [("csrf_token", try laptop.csrfToken()), ("text", "before")]).status == 303)
        let after = try #require(try phone.get("/").text.components(separatedBy: "data-after=").dropFirst().first?
            .prefix { $0.isNumber }, "the page says its newest note")
        // The phone listens (curl, for 3 s) while the laptop and Bob add notes.
        let listening = Handoff<Bool>()
        let jar = try #require(phone.cookieJar)
        let url = phone.baseURL + "/notes/live?after=\(after)"
        let output = directory.file("live.txt")
        Thread {
            _ = try? runToCompletion(try Tool.curl(), ["-sN", "--http1.1", "--max-time", "4", "-b", jar, "-o", output, url])
            listening.put(true)
        }.start()
        func received() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        // The stream is open once its first line (the reconnection delay) has arrived.
        #expect(waitUntil(seconds: 3) { received().hasPrefix("retry: 2000") }, "\(received())")
        #expect(try laptop.postForm("/notes", [("csrf_token", try laptop.csrfToken()), ("text", "live <one>")]).status == 303)
        #expect(try other.postForm("/notes", [("csrf_token", try other.csrfToken()), ("text", "bob's")]).status == 303)
        #expect(waitUntil(seconds: 3) { received().contains("data: live <one>\n") }, "\(received())")
        _ = listening.take(seconds: 10)
        let received = received()
        #expect(received.contains("event: note\n") && received.contains("data: live <one>\n"), "\(received)")
        #expect(!received.contains("before") && !received.contains("bob's"), "only what came after, only Ada's: \(received)")
        let visitor = HTTPClient(baseURL: laptop.baseURL, scratch: directory)
        #expect(try visitor.get("/notes/live").status == 403)
    }

    /// Five wrong passwords for one account, then 429 with `Retry-After`
    /// and the reason on the page, the right password included; another
    /// account from another address is not affected.
    @Test func signInIsThrottled() throws {
        let directory = try TemporaryDirectory("gimlet-notes-throttle")
        let stack = try Self.start(directory)
        defer { stack.app.stop() }
        let owner = stack.client
        #expect(try Self.enter(owner, name: "Frodo", password: "the ring is mine").status == 303)
        var thief = stack.client
        thief.cookieJar = directory.file("thief.jar")
        thief.sourceAddress = "127.0.0.2"
        for attempt in 1...5 {
            #expect(try Self.enter(thief, "/login", name: "frodo", password: "guess \(attempt)").status == 403)
        }
        let refused = try Self.enter(thief, "/login", name: "Frodo", password: "the ring is mine")
        #expect(refused.status == 429, "\(refused.status)")
        let retryAfter = try #require(Int(refused.header("Retry-After") ?? ""))
        #expect(retryAfter > 0 && retryAfter <= 900)
        #expect(refused.text.contains("too many sign-in attempts") && refused.text.contains("action=/login"))
        #expect(!refused.text.contains("Signed in as"))

        var friend = stack.client
        friend.cookieJar = directory.file("friend.jar")
        friend.sourceAddress = "127.0.0.3"
        #expect(try Self.enter(friend, name: "Sam", password: "po-tay-toes").status == 303, "another account, another address")
    }
}
