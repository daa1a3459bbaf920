import Foundation
import Gimlet
import Mustache

/// The notes app's HTML, rendered from Mustache templates
/// (hummingbird-project/swift-mustache): `{{value}}` is HTML-escaped, so
/// every value the user gave is data, never markup; every form carries its
/// CSRF token (the `csrf` partial).
enum NotesPages {
    /// The templates, parsed once: a page (`layout`, with the `header`
    /// partial) and its bodies. A template that does not parse is a bug
    /// caught by the first test.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in NotesTemplates.all {
            do { try library.register(text, named: name) } catch { preconditionFailure("template \(name) does not parse: \(error)") }
        }
        return library
    }()

    /// The home page: sign-in and sign-up forms for a visitor; the notes,
    /// a form to add one, the attachments and the account's links once
    /// signed in. `problem` is what a refused form said (wrong password,
    /// name taken, too many attempts).
    static func home(user: String?, notes: [String], newestNote: Int64 = 0, attachments: [NoteStore.Attachment] = [],
                     messages: [String], problem: String? = nil, token: String) -> String {
        render("home", title: "Notes", user: user, token: token, messages: messages, [
            "problem": problem ?? "", "hasProblem": problem != nil, "notes": notes, "noNotes": notes.isEmpty,
            "newestNote": String(newestNote),
            "attachments": attachments.map { ["id": $0.id, "name": $0.name, "size": size($0.size)] },
            "hasAttachments": !attachments.isEmpty,
            // The sign-up form's password field asks for a new password (the credentials partial).
            "signup": ["newPassword": true],
        ])
    }

    /// The account's sessions, this browser's marked, with "sign out everywhere else".
    static func sessions(user: String, sessions: [UserSession], current: String, messages: [String], token: String) -> String {
        let listed = sessions.map { session -> [String: Any] in
            [
                "current": session.id == current,
                "agent": session.details["agent"].flatMap { $0.isEmpty ? nil : $0 } ?? "an unnamed client",
                "address": session.details["address"] ?? "?",
                "created": date(session.created), "lastSeen": date(session.lastSeen),
            ]
        }
        return render("sessions", title: "Your sessions", user: user, token: token, messages: messages, [
            "sessions": listed, "others": sessions.contains { $0.id != current },
        ])
    }

    /// `template` inside the layout, with what every page has.
    private static func render(_ template: String, title: String, user: String?, token: String, messages: [String],
                               _ values: [String: Any]) -> String {
        // No optionals in a context (Mustache renders nil as "nil", and any
        // string, empty or not, opens a section): a Bool says what is there.
        var context: [String: Any] = ["title": title, "user": user ?? "", "signedIn": user != nil, "csrfToken": token,
                                      "messages": messages]
        for (key, value) in values { context[key] = value }
        let body = library.render(context, withTemplate: template) ?? ""
        context["body"] = body
        return library.render(context, withTemplate: "layout") ?? ""
    }

    static func size(_ bytes: Int) -> String {
        bytes < 1024 ? "\(bytes) B" : bytes < 1 << 20 ? "\(bytes >> 10) KiB" : "\(bytes >> 20) MiB"
    }

    static func date(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) + " UTC"
    }
}
