import Foundation
import Gimlet
import GimletHTTP

/// The notes app's HTML: every value escaped, every form with its CSRF token.
enum NotesPages {
    /// The home page: sign-in and sign-up forms for a visitor; the notes,
    /// a form to add one and the account's links once signed in. `problem`
    /// is what a refused form said (wrong password, name taken, too many attempts).
    static func home(user: String?, notes: [String], newestNote: Int64 = 0, attachments: [NoteStore.Attachment] = [],
                     messages: [String], problem: String? = nil, token: String) -> String {
        let csrf = field(token)
        var body = header(user: user, csrf: csrf) + "<main>\n" + flashes(messages)
        if let problem { body += "<p class=problem role=alert>\(HTMLText.escape(problem))</p>\n" }
        if user != nil {
            if notes.isEmpty { body += "<p class=empty>No notes yet.</p>\n" }
            // live.js appends what /notes/live sends after the newest note shown.
            body += "<ul class=notes data-after=\(newestNote)>\n" + notes.map { "<li>\(HTMLText.escape($0))</li>\n" }.joined() + "</ul>\n"
            body += """
                <form method=post action=/notes class=add>\(csrf)<input name=text placeholder="a note" maxlength=500 required aria-label="New note"> <button>Add</button></form>
                <h2>Attachments</h2>

                """
            if !attachments.isEmpty {
                body += "<ul class=attachments>\n" + attachments.map { attachment in
                    "<li><a href=\"/attachments/\(HTMLText.escape(attachment.id))\">\(HTMLText.escape(attachment.name))</a> <span>\(size(attachment.size))</span></li>\n"
                }.joined() + "</ul>\n"
            }
            body += """
                <form method=post action=/attachments enctype=multipart/form-data class=attach>\(csrf)<input type=file name=file aria-label="A file to attach"> <button>Attach</button></form>
                <p class=hint>Your notes and attachments belong to your account: they stay when you sign out, and are here again when you sign in, on any browser. Only you can download your attachments. <a href=/sessions>Where you are signed in</a></p>

                """
        } else {
            body += """
                <h2>Sign in</h2>
                <form method=post action=/login class=signin>\(csrf)\(credentials(autocomplete: "current-password")) <button>Sign in</button></form>
                <h2>New here?</h2>
                <form method=post action=/signup class=signup>\(csrf)\(credentials(autocomplete: "new-password")) <button>Make an account</button></form>
                <p class=hint>A name of up to 40 characters and a password of at least 8.</p>

                """
        }
        return document(title: "Notes", body: body + "</main>\n")
    }

    /// The account's sessions, this browser's marked, with "sign out everywhere else".
    static func sessions(user: String, sessions: [UserSession], current: String, messages: [String], token: String) -> String {
        let csrf = field(token)
        var body = header(user: user, csrf: csrf) + "<main>\n" + flashes(messages) + "<h2>Where you are signed in</h2>\n<ul class=sessions>\n"
        for session in sessions {
            let here = session.id == current
            let agent = session.details["agent"].flatMap { $0.isEmpty ? nil : $0 } ?? "an unnamed client"
            body += "<li\(here ? " class=current" : "")><b>\(here ? "This browser" : HTMLText.escape(agent))</b>"
                + " <span>from \(HTMLText.escape(session.details["address"] ?? "?")), signed in \(date(session.created)),"
                + " last seen \(date(session.lastSeen))</span></li>\n"
        }
        body += "</ul>\n"
        if sessions.contains(where: { $0.id != current }) {
            body += "<form method=post action=/sessions/others class=others>\(csrf)<button>Sign out everywhere else</button></form>\n"
        }
        body += "<p><a href=/>Back to your notes</a></p>\n</main>\n"
        return document(title: "Your sessions", body: body)
    }

    static func size(_ bytes: Int) -> String {
        bytes < 1024 ? "\(bytes) B" : bytes < 1 << 20 ? "\(bytes >> 10) KiB" : "\(bytes >> 20) MiB"
    }

    static func field(_ token: String) -> String {
        #"<input type="hidden" name="csrf_token" value="\#(HTMLText.escape(token))">"#
    }

    static func credentials(autocomplete: String) -> String {
        #"<input name=name placeholder="your name" maxlength=40 required aria-label="Your name" autocomplete=username>"#
            + #" <input name=password type=password placeholder="password"\#(autocomplete == "new-password" ? " minlength=8" : "") maxlength=1024 required aria-label="Password" autocomplete=\#(autocomplete)>"#
    }

    static func header(user: String?, csrf: String) -> String {
        var header = "<header><h1><a href=/>Notes</a></h1>"
        if let user {
            header += "<form method=post action=/logout class=signout>\(csrf)<span>Signed in as <b>\(HTMLText.escape(user))</b></span> <button>Sign out</button></form>"
        }
        return header + "</header>\n"
    }

    static func flashes(_ messages: [String]) -> String {
        messages.map { "<p class=flash role=status>\(HTMLText.escape($0))</p>\n" }.joined()
    }

    static func date(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) + " UTC"
    }

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang=en>
        <meta charset=utf-8>
        <meta name=viewport content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escape(title))</title>
        <link rel=stylesheet href="/static/notes.css">
        <script src="/static/live.js" defer></script>
        \(body)
        """
    }
}
