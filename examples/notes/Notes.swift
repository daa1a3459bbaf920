// notes: a small real app on Gimlet sessions, the one `make run` serves.
//
// A visitor signs in with a name (kept client-side in the permanent cookie),
// keeps a list of notes (server-side, in SQLite by default), and sees flash
// messages after each action. Forms carry a CSRF token. The notes belong to
// the browser's session: signing out deletes them, and the page says so.
// `/api/notes` serves the same notes as JSON (POST with a JSON body and the
// `X-CSRF-Token` header); `POST /api/notes/import` with `{"url": …}` fetches
// a text from one of the origins in NOTES_IMPORT_ORIGINS and adds it.
//
//   GIMLET_SECRET=$(openssl rand -hex 32) notes --fastcgi unix:/tmp/notes.sock
import ArgumentParser
import Foundation
import Gimlet
import GimletHTTP
import GimletHost
import GimletRedis
import GimletSQLite

@main
struct Notes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A notes app on Gimlet sessions. Needs GIMLET_SECRET; stores notes in GIMLET_BACKEND (default: SQLite in GIMLET_DATA_DIR).",
        version: Host.version)

    @OptionGroup var host: HostOptions

    func run() throws {
        var environment = ProcessInfo.processInfo.environment
        if environment["GIMLET_BACKEND"] == nil {
            environment["GIMLET_BACKEND"] = SQLiteSessionBackend.defaultURL(environment: environment)
        }
        let importer = try NoteImporter(origins: environment["NOTES_IMPORT_ORIGINS"] ?? "")
        // Built in each process that serves: a supervisor opens no backend.
        try Host.run(configuration: try host.configuration()) { logger in
            let sessions = try SessionConfiguration(environment: environment, backends: SessionBackends(.sqlite, .redis, logger: logger))
            return try Notes.router(sessions, importer: importer)
        }
    }

    static func router(_ sessions: SessionConfiguration, importer: NoteImporter) throws -> Router {
        var router = Router()
        router.get("/notes.css") { _ in
            var response = Response.bytes(Array(stylesheet.utf8), contentType: "text/css; charset=utf-8")
            response.headers["Cache-Control"] = "public, max-age=3600"
            return response
        }
        router.use(try SessionMiddleware(sessions))

        router.get("/hello/:name") { request in .text("hello, \(request.parameters["name"] ?? "")") }

        router.get("/") { request in
            let session = request.session
            let user = try session.get("user")?.stringValue
            let notes = try session.get("notes")?.arrayValue?.compactMap(\.stringValue) ?? []
            let messages = try session.popFlash()
            let token = try session.csrfToken()
            return .html(page(user: user, notes: notes, messages: messages, token: token))
        }

        router.post("/login") { request in
            try request.session.verifyCSRF(request)
            let name = (request.form["name"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.count <= 40 else { throw HTTPError(.badRequest, "A name of 1 to 40 characters, please.") }
            let session = request.session
            try session.set("user", .string(name), permanent: true, clientside: true)
            try session.regenerateID()
            try session.flash("Welcome, \(name).")
            return .redirect(to: "/", status: .seeOther)
        }

        router.post("/notes") { request in
            try request.session.verifyCSRF(request)
            try add(request.form["text"] ?? "", to: request.session)
            try request.session.flash("Noted.")
            return .redirect(to: "/", status: .seeOther)
        }

        router.post("/logout") { request in
            try request.session.verifyCSRF(request)
            request.session.invalidate()
            try request.session.flash("Signed out. Your notes were deleted with your session.")
            return .redirect(to: "/", status: .seeOther)
        }

        router.get("/api/notes") { request in
            try signedInUser(request.session)
            return try .json(NoteList(notes: notes(in: request.session)))
        }

        router.post("/api/notes") { request in
            try request.session.verifyCSRF(request)
            let note = try request.decodeJSON(NewNote.self)
            try add(note.text, to: request.session)
            return try .json(NoteList(notes: notes(in: request.session)), status: .created)
        }
        // An async handler around a real async API: the fetch is awaited on
        // URLSession (libcurl underneath), the session used after it as in
        // any handler. A client that hangs up cancels the fetch.
        router.post("/api/notes/import") { request async throws -> Response in
            try request.session.verifyCSRF(request)
            try signedInUser(request.session)
            let source = try request.decodeJSON(NoteSource.self)
            let text = try await importer.fetchText(from: source.url)
            try add(text, to: request.session)
            return try .json(NoteList(notes: notes(in: request.session)), status: .created)
        }
        return router
    }

    struct NewNote: Decodable { var text: String }
    struct NoteSource: Decodable { var url: String }
    struct NoteList: Encodable { var notes: [String] }

    @discardableResult
    static func signedInUser(_ session: Session) throws -> String {
        guard let user = try session.get("user")?.stringValue else { throw HTTPError(.forbidden, "Sign in first.") }
        return user
    }

    static func notes(in session: Session) throws -> [String] {
        try session.get("notes", permanent: true, clientside: false)?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func add(_ raw: String, to session: Session) throws {
        try signedInUser(session)
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.count <= 500 else { throw HTTPError(.badRequest, "A note of 1 to 500 characters, please.") }
        let notes = try notes(in: session) + [text]
        try session.set("notes", .array(notes.map { .string($0) }), permanent: true, clientside: false)
    }

    static func page(user: String?, notes: [String], messages: [String], token: String) -> String {
        let csrf = #"<input type="hidden" name="csrf_token" value="\#(HTMLText.escape(token))">"#
        var body = "<header><h1>Notes</h1>"
        if let user {
            body += "<form method=post action=/logout class=signout>\(csrf)<span>Signed in as <b>\(HTMLText.escape(user))</b></span> <button>Sign out</button></form>"
        }
        body += "</header>\n<main>\n"
        for message in messages { body += "<p class=flash role=status>\(HTMLText.escape(message))</p>\n" }
        if user != nil {
            if notes.isEmpty {
                body += "<p class=empty>No notes yet.</p>\n"
            } else {
                body += "<ul class=notes>\n" + notes.map { "<li>\(HTMLText.escape($0))</li>\n" }.joined() + "</ul>\n"
            }
            body += """
                <form method=post action=/notes class=add>\(csrf)<input name=text placeholder="a note" maxlength=500 required aria-label="New note"> <button>Add</button></form>
                <p class=hint>Your notes live in this browser's session, on the server. Signing out deletes them.</p>

                """
        } else {
            body += """
                <p>Sign in with any name to keep a few notes in this browser's session.</p>
                <form method=post action=/login class=signin>\(csrf)<input name=name placeholder="your name" maxlength=40 required aria-label="Your name"> <button>Sign in</button></form>

                """
        }
        body += "</main>\n"
        return """
            <!doctype html>
            <html lang=en>
            <meta charset=utf-8>
            <meta name=viewport content="width=device-width, initial-scale=1">
            <title>Notes</title>
            <link rel=stylesheet href="/notes.css">
            \(body)
            """
    }

    static let stylesheet = """
        :root { color-scheme: light dark; --accent: #2f6f4f; --muted: #777; }
        body { font: 17px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 38rem; margin: 2rem auto; padding: 0 1rem; }
        header { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; flex-wrap: wrap; border-bottom: 2px solid var(--accent); margin-bottom: 1rem; }
        h1 { margin: 0 0 .3rem; font-size: 1.6rem; color: var(--accent); }
        form { display: flex; gap: .5rem; align-items: center; margin: 1rem 0; }
        form.signout { margin: 0; font-size: .95rem; }
        input[name=text], input[name=name] { flex: 1; font: inherit; padding: .45rem .6rem; border: 1px solid #bbb; border-radius: 6px; }
        button { font: inherit; padding: .45rem .9rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
        form.signout button { background: transparent; color: var(--accent); border: 1px solid var(--accent); padding: .2rem .6rem; }
        .flash { background: #e6f4ea; color: #1e4d33; border-left: 4px solid var(--accent); padding: .6rem .8rem; border-radius: 4px; }
        ul.notes { padding-left: 1.2rem; }
        ul.notes li { margin: .3rem 0; overflow-wrap: anywhere; }
        .empty, .hint { color: var(--muted); }
        .hint { font-size: .9rem; }
        """
}
