/// The notes app's Mustache templates, in the binary (no file to find at
/// run time). `{{value}}` escapes HTML; `{{{body}}}` is the page's own
/// rendered body, already escaped.
enum NotesTemplates {
    static let all: [String: String] = [
        "layout": layout, "header": header, "csrf": csrf, "credentials": credentials, "home": home, "sessions": sessions,
    ]

    static let layout = """
        <!doctype html>
        <html lang=en>
        <meta charset=utf-8>
        <meta name=viewport content="width=device-width, initial-scale=1">
        <title>{{title}}</title>
        <link rel=stylesheet href="/static/notes.css">
        <script src="/static/live.js" defer></script>
        {{> header}}
        <main>
        {{#messages}}<p class=flash role=status>{{.}}</p>
        {{/messages}}
        {{{body}}}</main>

        """

    static let header = """
        <header><h1><a href=/>Notes</a></h1>{{#signedIn}}<form method=post action=/logout class=signout>{{> csrf}}<span>Signed in as <b>{{user}}</b></span> <button>Sign out</button></form>{{/signedIn}}</header>
        """

    static let csrf = #"<input type="hidden" name="csrf_token" value="{{csrfToken}}">"#

    static let credentials = #"""
        <input name=name placeholder="your name" maxlength=40 required aria-label="Your name" autocomplete=username> <input name=password type=password placeholder="password"{{#newPassword}} minlength=8{{/newPassword}} maxlength=1024 required aria-label="Password" autocomplete={{#newPassword}}new-password{{/newPassword}}{{^newPassword}}current-password{{/newPassword}}>
        """#

    static let home = """
        {{#hasProblem}}<p class=problem role=alert>{{problem}}</p>
        {{/hasProblem}}
        {{#signedIn}}
        {{#noNotes}}<p class=empty>No notes yet.</p>
        {{/noNotes}}
        <ul class=notes data-after={{newestNote}}>
        {{#notes}}<li>{{.}}</li>
        {{/notes}}
        </ul>
        <form method=post action=/notes class=add>{{> csrf}}<input name=text placeholder="a note" maxlength=500 required aria-label="New note"> <button>Add</button></form>
        <h2>Attachments</h2>
        {{#hasAttachments}}<ul class=attachments>
        {{#attachments}}<li><a href="/attachments/{{id}}">{{name}}</a> <span>{{size}}</span></li>
        {{/attachments}}
        </ul>
        {{/hasAttachments}}
        <form method=post action=/attachments enctype=multipart/form-data class=attach>{{> csrf}}<input type=file name=file aria-label="A file to attach"> <button>Attach</button></form>
        <p class=hint>Your notes and attachments belong to your account: they stay when you sign out, and are here again when you sign in, on any browser. Only you can download your attachments. <a href=/sessions>Where you are signed in</a></p>
        {{/signedIn}}
        {{^signedIn}}
        <h2>Sign in</h2>
        <form method=post action=/login class=signin>{{> csrf}}{{> credentials}} <button>Sign in</button></form>
        <h2>New here?</h2>
        <form method=post action=/signup class=signup>{{> csrf}}{{#signup}}{{> credentials}}{{/signup}} <button>Make an account</button></form>
        <p class=hint>A name of up to 40 characters and a password of at least 8.</p>
        {{/signedIn}}

        """

    static let sessions = """
        <h2>Where you are signed in</h2>
        <ul class=sessions>
        {{#sessions}}<li{{#current}} class=current{{/current}}><b>{{#current}}This browser{{/current}}{{^current}}{{agent}}{{/current}}</b> <span>from {{address}}, signed in {{created}}, last seen {{lastSeen}}</span></li>
        {{/sessions}}
        </ul>
        {{#others}}<form method=post action=/sessions/others class=others>{{> csrf}}<button>Sign out everywhere else</button></form>
        {{/others}}
        <p><a href=/>Back to your notes</a></p>

        """
}
