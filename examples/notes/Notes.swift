// notes: a small real app on Gimlet sessions, the one `make run` serves.
//
// A visitor signs in with a name (kept client-side in the permanent cookie),
// keeps a list of notes (server-side, in SQLite by default), and sees flash
// messages after each action. Forms carry a CSRF token.
//
//   GIMLET_SECRET=$(openssl rand -hex 32) notes --fastcgi unix:/tmp/notes.sock
import ArgumentParser
import Foundation
import Gimlet
import GimletHTTP
import GimletHost

@main
struct Notes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A notes app on Gimlet sessions. Needs GIMLET_SECRET; stores notes in GIMLET_BACKEND (default: SQLite in GIMLET_DATA_DIR).")

    @OptionGroup var host: HostOptions

    func run() throws {
        var environment = ProcessInfo.processInfo.environment
        if environment["GIMLET_BACKEND"] == nil {
            environment["GIMLET_BACKEND"] = SessionBackends.defaultURL(environment: environment)
        }
        let sessions = try SessionConfiguration(environment: environment, backends: SessionBackends.open(url:))
        try Host(try Notes.router(sessions), configuration: try host.configuration()).run()
    }

    static func router(_ sessions: SessionConfiguration) throws -> Router {
        var router = Router()
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
            guard !name.isEmpty, name.count <= 40 else { throw HTTPError(.badRequest, "a name of 1 to 40 characters, please") }
            let session = request.session
            try session.set("user", .string(name), permanent: true, clientside: true)
            try session.regenerateID()
            try session.flash("Welcome, \(name).")
            return .redirect(to: "/", status: .seeOther)
        }

        router.post("/notes") { request in
            try request.session.verifyCSRF(request)
            let text = (request.form["text"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty, text.count <= 500 else { throw HTTPError(.badRequest, "a note of 1 to 500 characters, please") }
            let session = request.session
            var notes = try session.get("notes", permanent: true, clientside: false) ?? []
            notes.append(.string(text))
            try session.set("notes", notes, permanent: true, clientside: false)
            try session.flash("Noted.")
            return .redirect(to: "/", status: .seeOther)
        }

        router.post("/logout") { request in
            try request.session.verifyCSRF(request)
            request.session.invalidate()
            return .redirect(to: "/", status: .seeOther)
        }
        return router
    }

    static func page(user: String?, notes: [String], messages: [String], token: String) -> String {
        let csrf = #"<input type="hidden" name="csrf_token" value="\#(escape(token))">"#
        var body = "<h1>Notes</h1>\n"
        for message in messages { body += "<p class=flash>\(escape(message))</p>\n" }
        if let user {
            body += "<p>Signed in as <b>\(escape(user))</b>.</p>\n"
            body += "<form method=post action=/logout>\(csrf)<button>Sign out</button></form>\n"
        } else {
            body += "<form method=post action=/login>\(csrf)<input name=name placeholder=\"your name\"> <button>Sign in</button></form>\n"
        }
        body += "<ul>\n" + notes.map { "<li>\(escape($0))</li>\n" }.joined() + "</ul>\n"
        body += "<form method=post action=/notes>\(csrf)<input name=text placeholder=\"a note\"> <button>Add</button></form>\n"
        return "<!doctype html>\n<meta charset=utf-8>\n<title>Notes</title>\n" + body
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
