import Foundation
import Gimlet
import GimletHTTP

/// Sign-up and sign-in: names and passwords checked, passwords hashed with
/// scrypt (``PasswordHasher``), every attempt counted by the throttle in
/// the session store, and the session bound to the account on success.
struct Accounts: Sendable {
    let store: NoteStore
    let throttle: SignInThrottle
    let hasher = PasswordHasher()

    /// Checked against when a name has no account, so that a wrong name
    /// takes as long to refuse as a wrong password.
    static let unknownAccountHash: String = (try? PasswordHasher().hash(SessionID.random().hex)) ?? ""

    /// Makes the account named in the form and signs the session in to it.
    ///
    /// - Returns: the account's name.
    /// - Throws: `HTTPError` 400 (a bad name or password), 409 (the name is
    ///   taken) or 429 (too many attempts from this address).
    func signUp(_ request: Request) throws -> String {
        let name = try Self.name(request.form["name"])
        let password = request.form["password"] ?? ""
        guard password.count >= 8, password.utf8.count <= PasswordHasher.maximumPasswordBytes else {
            throw HTTPError(.badRequest, "A password of at least 8 characters, please.")
        }
        // Hashing costs tens of milliseconds: sign-ups count as attempts too.
        try throttle.attempt(account: name.lowercased(), from: request)
        let hash: String
        do { hash = try hasher.hash(password) } catch { throw HTTPError(.badRequest, "\(error)") }
        guard try store.createAccount(name, passwordHash: hash) else {
            throw HTTPError(.conflict, "The name \(name) is taken; choose another or sign in.")
        }
        try throttle.succeeded(account: name.lowercased())
        try bind(request.session, to: name, request: request)
        return name
    }

    /// Signs the session in to the account named in the form.
    ///
    /// - Returns: the account's name, as it was made.
    /// - Throws: `HTTPError` 403 (a wrong name or password) or 429 (too many attempts).
    func signIn(_ request: Request) throws -> String {
        let typed = try Self.name(request.form["name"])
        try throttle.attempt(account: typed.lowercased(), from: request)
        let password = request.form["password"] ?? ""
        let account = try store.account(typed)
        let hash = account?.passwordHash ?? Self.unknownAccountHash
        let matches = (try? hasher.verify(password, against: hash)) ?? false
        guard let account, matches else { throw HTTPError(.forbidden, "Wrong name or password.") }
        try throttle.succeeded(account: typed.lowercased())
        if hasher.needsRehash(account.passwordHash), let rehashed = try? hasher.hash(password) {
            try store.updatePasswordHash(of: account.name, to: rehashed)
        }
        try bind(request.session, to: account.name, request: request)
        return account.name
    }

    /// Binds the session (new ids, as any login) and records what the sessions page shows.
    func bind(_ session: Session, to name: String, request: Request) throws {
        let agent = String((request.headers["User-Agent"] ?? "").prefix(200))
        try session.bind(toUser: name, recording: ["agent": agent, "address": request.remoteAddress ?? ""])
    }

    /// A name from a form: 1 to 40 characters once trimmed, no control characters.
    static func name(_ raw: String?) throws -> String {
        let name = (raw ?? "").trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 40, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw HTTPError(.badRequest, "A name of 1 to 40 characters, please.") }
        return name
    }
}
