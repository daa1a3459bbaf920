// notes: a small real app on Gimlet sessions, the one `make run` serves.
//
// A visitor makes an account (a name and a password, hashed with scrypt)
// and signs in; sign-in attempts are throttled in the session store. The
// session is bound to the account, so `/sessions` lists where the account is
// signed in and can sign out everywhere else. Notes belong to the account,
// in the app's own SQLite table (notes.sqlite in GIMLET_DATA_DIR): they
// survive sign-out. Flash messages follow each action; forms carry a CSRF
// token. `/api/notes` serves the same notes as JSON (POST with a JSON body
// and the `X-CSRF-Token` header); `POST /api/notes/import` with
// `{"url": …}` fetches a text from one of the origins in
// NOTES_IMPORT_ORIGINS and adds it. Files attach to the account (a file
// input, multipart, read as it arrives): kept in NOTES_FILES (default:
// files in GIMLET_DATA_DIR) under random names, listed on the home page,
// downloaded only by their account, sent by nginx (X-Accel-Redirect) or
// Apache (X-Sendfile) when GIMLET_FILE_OFFLOAD says so, else by the host.
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
        abstract: "A notes app on Gimlet sessions. Needs GIMLET_SECRET; keeps sessions in GIMLET_BACKEND (default: SQLite in GIMLET_DATA_DIR) and accounts and notes in NOTES_DATABASE (default: notes.sqlite in GIMLET_DATA_DIR).",
        version: Host.version)

    @OptionGroup var host: HostOptions

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let databasePath = environment["NOTES_DATABASE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? SQLiteDatabase.defaultPath("notes.sqlite", environment: environment)
        let importer = try NoteImporter(origins: environment["NOTES_IMPORT_ORIGINS"] ?? "")
        let filesPath = environment["NOTES_FILES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (URL(fileURLWithPath: databasePath).deletingLastPathComponent().path + "/files")
        let offloadText = environment["GIMLET_FILE_OFFLOAD"].flatMap { $0.isEmpty ? nil : $0 } ?? "none"
        guard let offload = FileOffload(offloadText) else {
            throw ValidationError("GIMLET_FILE_OFFLOAD must be none, nginx:/internal-prefix/ or apache, not \(offloadText)")
        }
        // Built in each process that serves: a supervisor opens no backend.
        try Host.run(configuration: try host.configuration()) { logger in
            let sessions = try SessionConfiguration(environment: environment, backends: SessionBackends(.sqlite, .redis, logger: logger))
            let store: NoteStore
            do { store = try NoteStore(path: databasePath) } catch {
                throw SessionConfigurationError("cannot open the notes database: \(error); set NOTES_DATABASE or GIMLET_DATA_DIR to a place this user can write")
            }
            let files: FileDownloads
            do {
                try FileManager.default.createDirectory(atPath: filesPath, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
                files = try FileDownloads(root: filesPath, offload: offload)
            } catch {
                throw SessionConfigurationError("cannot use the attachments directory \(filesPath): \(error); set NOTES_FILES")
            }
            return try Notes.router(sessions, store: store, importer: importer, files: files)
        }
    }

    static func router(_ sessions: SessionConfiguration, store: NoteStore, importer: NoteImporter,
                       files: FileDownloads) throws -> Router {
        guard let backend = sessions.backend else {
            throw SessionConfigurationError("notes needs a session backend (sign-in binds sessions to accounts); unset GIMLET_BACKEND for SQLite")
        }
        let throttle = SignInThrottle(backend: backend)
        let accounts = Accounts(store: store, throttle: throttle)
        var router = Router()
        router.use(try SessionMiddleware(sessions))

        router.get("/hello/:name") { request in .text("hello, \(request.parameters["name"] ?? "")") }

        router.get("/") { request in try home(request, store: store) }

        router.post("/signup") { request in
            try request.session.verifyCSRF(request)
            return try refused(request, store: store) {
                let name = try accounts.signUp(request)
                try request.session.flash("Welcome, \(name). Your account is ready.")
            }
        }

        router.post("/login") { request in
            try request.session.verifyCSRF(request)
            return try refused(request, store: store) {
                let name = try accounts.signIn(request)
                try request.session.flash("Welcome back, \(name).")
            }
        }

        router.post("/notes") { request in
            try request.session.verifyCSRF(request)
            try store.add(request.form["text"] ?? "", to: try signedInUser(request.session))
            try request.session.flash("Noted.")
            return .redirect(to: "/", status: .seeOther)
        }

        // A file input's form: multipart, read as it arrives; each file part
        // goes to disk once (an unnamed file), then is linked under a random
        // name. The browser's filename is only shown, never used as a path.
        router.post("/attachments", options: .streamBody) { request in
            try request.session.verifyCSRF(request)
            let user = try signedInUser(request.session)
            var attached: [String] = []
            try request.forEachPart { part in
                guard let file = part.file, let name = part.filename, !name.isEmpty || part.size > 0 else { return }
                let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
                // Readable by the web server's user where it sends the files (the
                // directory keeps everyone else out).
                try file.keep(at: files.root + "/" + id, mode: 0o644)
                do {
                    try store.addAttachment(NoteStore.Attachment(id: id, name: String(name.prefix(200)), size: part.size), to: user)
                } catch {
                    try? FileManager.default.removeItem(atPath: files.root + "/" + id)
                    throw error
                }
                attached.append(name)
            }
            try request.session.flash(attached.isEmpty ? "Choose a file first." : "Attached \(attached.joined(separator: ", ")).")
            return .redirect(to: "/", status: .seeOther)
        }

        // Only the account's own: another account's id is as missing (404).
        router.get("/attachments/:id") { request in
            guard let user = try request.session.boundUser,
                  let attachment = try store.attachment(request.parameters["id"] ?? "", of: user)
            else { throw HTTPError(.notFound) }
            // Whatever the browser said it was, it is sent as a download: never shown inline.
            return try files.response(attachment.id, for: request, contentType: "application/octet-stream",
                                      downloadName: attachment.name)
        }

        // Live updates: a note added in another window (or browser) of the
        // account appears here without a reload, over server-sent events. The
        // stream looks for new notes twice a second in the app's table, so it
        // sees those added by any process; while it waits, no worker thread
        // does. The page passes the newest note it shows; a reconnecting
        // EventSource sends the last one it got (Last-Event-ID).
        router.get("/notes/live") { request in
            let user = try signedInUser(request.session)
            let given = request.lastEventID ?? request.query["after"]
            let start = try given.flatMap { Int64($0) } ?? store.lastNoteID(of: user)
            return .events(retry: .seconds(2)) { events in
                var last = start
                while true {
                    for note in try store.notes(of: user, after: last) {
                        try await events.send(data: note.text, event: "note", id: String(note.id))
                        last = note.id
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        }

        router.post("/logout") { request in
            try request.session.verifyCSRF(request)
            request.session.invalidate()
            try request.session.flash("Signed out. Your notes and attachments are kept for your next sign-in.")
            return .redirect(to: "/", status: .seeOther)
        }

        router.get("/sessions") { request in
            let session = request.session
            guard let user = try session.boundUser else { return .redirect(to: "/", status: .seeOther) }
            let listed = try session.registry.sessions(ofUser: user)
            return .html(NotesPages.sessions(user: user, sessions: listed, current: session.id,
                                             messages: try session.popFlash(), token: try session.csrfToken()))
        }

        router.post("/sessions/others") { request in
            let session = request.session
            try session.verifyCSRF(request)
            let user = try signedInUser(session)
            let revoked = try session.registry.revokeSessions(ofUser: user, keeping: session)
            try session.flash(revoked == 1 ? "Signed out 1 other session." : "Signed out \(revoked) other sessions.")
            return .redirect(to: "/sessions", status: .seeOther)
        }

        router.get("/api/notes") { request in
            try .json(NoteList(notes: store.notes(of: try signedInUser(request.session))))
        }

        router.post("/api/notes") { request in
            try request.session.verifyCSRF(request)
            let user = try signedInUser(request.session)
            let note = try request.decodeJSON(NewNote.self)
            try store.add(note.text, to: user)
            return try .json(NoteList(notes: store.notes(of: user)), status: .created)
        }
        // An async handler around a real async API: the fetch is awaited on
        // URLSession (libcurl underneath), the session used after it as in
        // any handler. A client that hangs up cancels the fetch.
        router.post("/api/notes/import") { request async throws -> Response in
            try request.session.verifyCSRF(request)
            let user = try signedInUser(request.session)
            let source = try request.decodeJSON(NoteSource.self)
            let text = try await importer.fetchText(from: source.url)
            try store.add(text, to: user)
            return try .json(NoteList(notes: store.notes(of: user)), status: .created)
        }
        return router
    }

    struct NewNote: Decodable { var text: String }
    struct NoteSource: Decodable { var url: String }
    struct NoteList: Encodable { var notes: [String] }

    /// The account the session is signed in to, or 403.
    static func signedInUser(_ session: Session) throws -> String {
        guard let user = try session.boundUser else { throw HTTPError(.forbidden, "Sign in first.") }
        return user
    }

    static func home(_ request: Request, store: NoteStore, problem: String? = nil) throws -> Response {
        let session = request.session
        let user = try session.boundUser
        let notes = try user.map { try store.notes(of: $0) } ?? []
        let attachments = try user.map { try store.attachments(of: $0) } ?? []
        let newest = try user.map { try store.lastNoteID(of: $0) } ?? 0
        return .html(NotesPages.home(user: user, notes: notes, newestNote: newest, attachments: attachments,
                                     messages: try session.popFlash(), problem: problem, token: try session.csrfToken()))
    }

    /// Runs a form's action and sends the browser home; a refusal (a wrong
    /// password, a taken name, too many attempts) shows the home page with
    /// its reason, under the refusal's status and headers (`Retry-After`).
    static func refused(_ request: Request, store: NoteStore, _ action: () throws -> Void) throws -> Response {
        do {
            try action()
            return .redirect(to: "/", status: .seeOther)
        } catch let refusal as HTTPError {
            var problem = refusal.message ?? "\(refusal.status)"
            if let seconds = refusal.headers["Retry-After"].flatMap({ Int($0) }) {
                problem += " (in about \(max(1, (seconds + 59) / 60)) min)"
            }
            var response = try home(request, store: store, problem: problem)
            response.status = refusal.status
            for (name, value) in refusal.headers { response.headers[name] = value }
            return response
        }
    }

}
