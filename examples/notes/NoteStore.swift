import Foundation
import GimletHTTP
import GimletSQLite

/// The notes app's own data, beside its sessions: accounts (name and
/// password hash) and their notes, in one SQLite file (`notes.sqlite` in
/// GIMLET_DATA_DIR unless NOTES_DATABASE names another). Notes belong to
/// the account, so they outlive every session that wrote them.
struct NoteStore: Sendable {
    /// The most notes one account keeps.
    static let maximumNotes = 500

    let database: SQLiteDatabase

    /// Opens the file and creates the tables if they are missing.
    init(path: String) throws {
        database = try SQLiteDatabase(path: path)
        try database.write { statements in
            try statements.execute("""
                CREATE TABLE IF NOT EXISTS accounts (
                    name TEXT PRIMARY KEY COLLATE NOCASE, password TEXT NOT NULL, created INTEGER NOT NULL)
                """)
            try statements.execute("""
                CREATE TABLE IF NOT EXISTS notes (
                    id INTEGER PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts (name),
                    text TEXT NOT NULL, created INTEGER NOT NULL)
                """)
            try statements.execute("CREATE INDEX IF NOT EXISTS notes_by_account ON notes (account, id)")
            try statements.execute("""
                CREATE TABLE IF NOT EXISTS attachments (
                    id TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts (name),
                    name TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL)
                """)
            try statements.execute("CREATE INDEX IF NOT EXISTS attachments_by_account ON attachments (account, created)")
        }
    }

    /// The most attachments one account keeps.
    static let maximumAttachments = 100

    /// A file attached to an account: its random id (its name on disk and
    /// in its URL) and the name the browser gave it (data, never a path).
    struct Attachment: Equatable {
        var id: String
        var name: String
        var size: Int
    }

    /// The account's attachments, oldest first.
    func attachments(of account: String) throws -> [Attachment] {
        try database.read { try $0.rows("SELECT id, name, size FROM attachments WHERE account = ?1 ORDER BY created, rowid", [.text(account)]) }
            .compactMap { row in
                guard let id = row["id"].stringValue, let name = row["name"].stringValue, let size = row["size"].intValue else { return nil }
                return Attachment(id: id, name: name, size: Int(size))
            }
    }

    /// The attachment `id` if it belongs to `account`; `nil` otherwise (another account's is as missing).
    func attachment(_ id: String, of account: String) throws -> Attachment? {
        try attachments(of: account).first { $0.id == id }
    }

    /// Records an attachment whose file is already in place, or says why not (400).
    func addAttachment(_ attachment: Attachment, to account: String) throws {
        try database.write { statements in
            try Self.checkRoom(.attachments, of: account, in: statements)
            try statements.execute("INSERT INTO attachments (id, account, name, size, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                                   [.text(attachment.id), .text(account), .text(attachment.name), .int(Int64(attachment.size)),
                                    .int(Int64(Date().timeIntervalSince1970))])
        }
    }

    /// Makes an account; `false` if the name (in any case) is taken.
    func createAccount(_ name: String, passwordHash: String) throws -> Bool {
        try database.write { statements in
            try statements.execute("INSERT INTO accounts (name, password, created) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                                   [.text(name), .text(passwordHash), .int(Int64(Date().timeIntervalSince1970))]) == 1
        }
    }

    /// The account named `name` (in any case): its name as it was made, and its password hash.
    func account(_ name: String) throws -> (name: String, passwordHash: String)? {
        let rows = try database.read { try $0.rows("SELECT name, password FROM accounts WHERE name = ?1", [.text(name)]) }
        guard let row = rows.first, let stored = row["name"].stringValue, let hash = row["password"].stringValue else { return nil }
        return (stored, hash)
    }

    /// Replaces an account's password hash (after a sign-in found its parameters out of date).
    func updatePasswordHash(of name: String, to passwordHash: String) throws {
        try database.write { try $0.execute("UPDATE accounts SET password = ?2 WHERE name = ?1", [.text(name), .text(passwordHash)]) }
    }

    /// The account's notes, oldest first.
    func notes(of account: String) throws -> [String] {
        try database.read { try $0.rows("SELECT text FROM notes WHERE account = ?1 ORDER BY id", [.text(account)]) }
            .compactMap { $0["text"].stringValue }
    }

    /// The account's notes after note `id`, oldest first, with their ids (for live updates).
    func notes(of account: String, after id: Int64) throws -> [(id: Int64, text: String)] {
        try database.read { try $0.rows("SELECT id, text FROM notes WHERE account = ?1 AND id > ?2 ORDER BY id LIMIT 100",
                                        [.text(account), .int(id)]) }
            .compactMap { row in row["id"].intValue.flatMap { id in row["text"].stringValue.map { (id, $0) } } }
    }

    /// The id of the account's newest note; 0 when it has none.
    func lastNoteID(of account: String) throws -> Int64 {
        try database.read { try $0.rows("SELECT max(id) AS id FROM notes WHERE account = ?1", [.text(account)]) }
            .first?["id"].intValue ?? 0
    }

    /// Adds a note to the account, or says why not (400).
    func add(_ raw: String, to account: String) throws {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.count <= 500 else { throw HTTPError(.badRequest, "A note of 1 to 500 characters, please.") }
        try database.write { statements in
            try Self.checkRoom(.notes, of: account, in: statements)
            try statements.execute("INSERT INTO notes (account, text, created) VALUES (?1, ?2, ?3)",
                                   [.text(account), .text(text), .int(Int64(Date().timeIntervalSince1970))])
        }
    }

    /// What an account keeps a bounded number of.
    enum Kept: String {
        case notes, attachments

        var maximum: Int { self == .notes ? NoteStore.maximumNotes : NoteStore.maximumAttachments }
    }

    /// Throws 400 when the account already keeps the most of `kind`.
    private static func checkRoom(_ kind: Kept, of account: String, in statements: borrowing SQLiteDatabase.Statements) throws {
        // The table's name is one of the enum's, never outside input.
        let count = try statements.rows("SELECT count(*) AS count FROM \(kind.rawValue) WHERE account = ?1", [.text(account)])
            .first?["count"].intValue ?? 0
        guard count < kind.maximum else {
            throw HTTPError(.badRequest, "You have \(kind.maximum) \(kind.rawValue), the most one account keeps.")
        }
    }
}
