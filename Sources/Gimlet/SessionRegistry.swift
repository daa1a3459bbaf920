/// A user's sessions: those bound to the user with
/// ``Session/bind(toUser:recording:)``, listed and revoked ("sign out
/// everywhere").
///
/// The backend keeps an index per user, written in the same commit as the
/// session it names: an index channel (its id derived from the user id)
/// with one key per bound channel, the channel's id in hex. Listing reads
/// the index and the listed channels' reserved keys; revoking deletes the
/// listed channels and their entries. On Redis and PostgreSQL each is one
/// round trip (a script, a statement); on SQLite and the memory backend,
/// a few loads and one commit in this process. Entries of channels that
/// expired are dropped whenever the user's sessions are listed or revoked.
///
/// ```swift
/// router.get("/account/sessions") { request in
///     guard let user = try request.session.boundUser else { return .text("not signed in", status: .forbidden) }
///     let registry = try request.session.registry
///     let lines = try registry.sessions(ofUser: user).map { "\($0.id) since \($0.created): \($0.details["agent"] ?? "")" }
///     return .text(lines.joined(separator: "\n"))
/// }
/// router.post("/account/sign-out-elsewhere") { request in
///     guard let user = try request.session.boundUser else { return .text("not signed in", status: .forbidden) }
///     try request.session.registry.revokeSessions(ofUser: user, keeping: request.session)
///     return .text("done")
/// }
/// ```
public struct SessionRegistry: Sendable {
    /// Where the sessions are.
    public let backend: any SessionBackend

    /// The registry of the sessions in `backend`.
    public init(backend: any SessionBackend) {
        self.backend = backend
    }

    /// The sessions bound to `user` that have not expired, most recently seen first.
    ///
    /// - Throws: ``SessionBackendError`` if the backend cannot be reached.
    public func sessions(ofUser user: String) throws -> [UserSession] {
        let channels = try backend.loadIndexed(try Self.indexID(ofUser: user),
                                               keys: [Session.userKey, Session.loginKey, Session.seenKey])
        var sessions: [UserSession] = []
        for (id, values) in channels where values[Session.userKey]?.stringValue == user {
            guard case .object(let login)? = values[Session.loginKey] else { continue }  // a browser-session channel
            let created = Int64(login["created"]?.intValue ?? 0)
            var details: [String: String] = [:]
            if case .object(let recorded)? = login["details"] {
                for (key, value) in recorded { details[key] = value.stringValue ?? value.text }
            }
            sessions.append(UserSession(id: id.hex, created: created,
                                        lastSeen: values[Session.seenKey]?.intValue.map(Int64.init) ?? created, details: details))
        }
        return sessions.sorted { ($0.lastSeen, $0.id) > ($1.lastSeen, $1.id) }
    }

    /// Revokes the sessions bound to `user`, all of them or all but
    /// `current` (the request's own, to sign out everywhere else): their
    /// server-side data is deleted in one step, and each revoked session
    /// starts over empty at its next request (``RevocationCheck``).
    ///
    /// Revoking does not change `current` itself, even when it is one of
    /// the user's and is not kept: call ``Session/invalidate()`` to sign it
    /// out as well. A request of a revoked session that was already
    /// running may still store what it changes; the session starts over at
    /// the request after.
    ///
    /// - Returns: how many sessions were revoked.
    /// - Throws: ``SessionBackendError`` if the backend cannot be reached
    ///   (then nothing may be taken as revoked).
    @discardableResult
    public func revokeSessions(ofUser user: String, keeping current: Session? = nil) throws -> Int {
        let deleted = try backend.deleteIndexed(try Self.indexID(ofUser: user), keeping: current?.channelIDs ?? [])
        return deleted.values.filter { $0 == .string("p") }.count
    }

    /// The id of `user`'s index channel: the same on every host, and unlike
    /// any random channel id (16 bytes of HKDF-SHA-256 of the user id).
    ///
    /// - Throws: ``SessionConfigurationError`` if libcrypto fails to derive it.
    static func indexID(ofUser user: String) throws -> SessionID {
        try SessionID.derived(from: user, namespace: "gimlet-user-index", info: "v1")
    }
}

/// One of a user's sessions, as ``SessionRegistry/sessions(ofUser:)`` lists it.
public struct UserSession: Sendable, Equatable {
    /// The session's id (``Session/id`` of that session).
    public var id: String
    /// When it was bound to the user (the login), in seconds since 1970.
    public var created: Int64
    /// When it last stored something or was renewed (at most
    /// ``SessionConfiguration/renewAfter`` old while it is in use), in seconds since 1970.
    public var lastSeen: Int64
    /// What the app recorded at the login (``Session/bind(toUser:recording:)``).
    public var details: [String: String]

    /// A listed session.
    public init(id: String, created: Int64, lastSeen: Int64, details: [String: String]) {
        self.id = id
        self.created = created
        self.lastSeen = lastSeen
        self.details = details
    }
}
