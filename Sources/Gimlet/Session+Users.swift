/// When revoking a user's sessions (``SessionRegistry/revokeSessions(ofUser:keeping:)``)
/// takes effect for a session bound to that user.
///
/// Revoking deletes the server-side data of every channel bound to the user,
/// with the marker (the reserved key `_user_`) that binding stored in each.
/// A request of a revoked session finds the marker gone, and the session
/// starts over empty, its client-side values included: its cookies are
/// cleared or replaced. The two cases differ in when the marker is looked at.
public enum RevocationCheck: Sendable, Equatable {
    /// Every request of a bound session loads its server-side data before
    /// the handler runs (both channels, one round trip, which any
    /// server-side read of the request then shares). Revocation takes
    /// effect at the next request of every revoked session. When the check
    /// cannot run (the store is down), the request answers 503 without
    /// reaching the handler. It costs a bound session one load per request,
    /// whatever its handler reads; unbound sessions pay nothing but the
    /// decoding of their cookies.
    case everyRequest
    /// The marker is looked at only when a request loads server-side data
    /// anyway, or when a bound channel is due for renewal (once per
    /// ``SessionConfiguration/renewAfter``, which keeps the user's index
    /// renewed with it): hardly any extra I/O, but a revoked session goes
    /// on working for requests that read and write only client-side keys
    /// until one reads a server-side key or its renewal comes. A browser-session
    /// channel opened after the login is bound only once the marker is
    /// known, so such a channel, presented alone, is not checked either.
    case nextServerAccess
}

extension Session {
    /// The reserved key holding, in each channel of a bound session, the user it is bound to.
    static let userKey = "_user_"
    /// The reserved key holding, in a bound session's permanent channel,
    /// when it was bound and what the app recorded then.
    static let loginKey = "_login_"
    /// The reserved key holding, in a bound session's permanent channel,
    /// when it was last stored or renewed.
    static let seenKey = "_seen_"

    /// Binds the session to `user` at login: gives both channels new ids
    /// (as ``regenerateID()``), keeps every value, and stores server-side
    /// the user, the time and `details` (what ``SessionRegistry`` lists, such
    /// as the user agent). The backend indexes the session under the user
    /// in the request's commit, so the user's sessions can be listed and
    /// revoked; see ``RevocationCheck`` for when a revocation takes effect.
    ///
    /// ```swift
    /// router.post("/login") { request in
    ///     let user = try authenticate(request)
    ///     try request.session.bind(toUser: user.id, recording: ["agent": request.headers["User-Agent"] ?? ""])
    ///     return .redirect(to: "/")
    /// }
    /// ```
    ///
    /// A user has at most ``SessionConfiguration/maximumSessionsPerUser``
    /// sessions (100 by default): a login past that signs the least recently
    /// seen ones out, in its own commit, after one round trip to list them.
    ///
    /// Binding to another user replaces the binding; ``invalidate()`` (log
    /// out) ends it. The reserved keys `_user_`, `_login_` and `_seen_` are
    /// visible in ``keys()`` like the app's own.
    ///
    /// - Throws: ``SessionError/noBackend`` without a backend; a backend
    ///   failure (server-side values are read to move them).
    public func bind(toUser user: String, recording details: [String: String] = [:]) throws {
        guard let backend = context.backend else { throw SessionError.noBackend }
        try regenerateID()
        try makeRoomInIndex(of: user, backend: backend)
        for index in channels.indices where index == 0 || channels[index].id != nil {
            bindChannel(index, to: user)
        }
        channels[0].writeServer(Self.loginKey, .object([
            "created": .int(Int(now)), "details": .object(details.mapValues { .string($0) }),
        ]))
    }

    /// The user the session is bound to (``bind(toUser:recording:)``), or
    /// `nil`; a revoked session is bound to nobody. Reading it loads
    /// server-side data if the session is bound and it was not loaded yet.
    ///
    /// - Throws: a backend failure.
    public var boundUser: String? {
        get throws {
            guard channels[0].isBound else { return nil }
            try loadServerData()
            return channels[0].boundUser
        }
    }

    /// The registry of the session's backend, to list or revoke its user's
    /// other sessions from a handler.
    ///
    /// - Throws: ``SessionError/noBackend`` without a backend.
    public var registry: SessionRegistry {
        get throws {
            guard let backend = context.backend else { throw SessionError.noBackend }
            return SessionRegistry(backend: backend)
        }
    }

    /// The ids of the session's channels, for ``SessionRegistry`` to keep.
    var channelIDs: Set<SessionID> { Set(channels.compactMap(\.id)) }

    func bindChannel(_ index: Int, to user: String) {
        ensureID(index)
        channels[index].writeServer(Self.userKey, .string(user))
        channels[index].boundUser = user
    }

    /// After a load: a channel whose cookie says it is bound must hold its
    /// marker, naming the permanent channel's user. If the permanent
    /// channel's is gone, the session was revoked; if a browser-session
    /// channel names another user, or none is bound in the permanent
    /// channel, its cookies come from two sessions: either way the session
    /// starts over empty. A browser-session channel whose data is gone
    /// while the permanent one is intact has expired (its idle lifetime is
    /// shorter): that channel alone starts over, as any expired channel.
    func checkBinding() {
        // By index, and unbound first: this runs after every load, and a
        // closure over the elements copied each channel and its dictionaries.
        guard channels[0].cookieSaysBound || channels[1].cookieSaysBound,
              channels.indices.contains(where: {
                  channels[$0].cookieSaysBound && channels[$0].boundUser == nil && channels[$0].serverLoaded
              }) else { return }
        let owner = channels[0].cookieSaysBound ? channels[0].stored[Self.userKey]?.stringValue : nil
        var intact = !channels[0].cookieSaysBound || owner != nil
        var expired: [Int] = []
        for index in channels.indices.dropFirst() where intact && channels[index].cookieSaysBound {
            let marker = channels[index].stored[Self.userKey]?.stringValue
            if owner == nil || (marker != nil && marker != owner) {
                intact = false
            } else if marker == nil {
                expired.append(index)
            }
        }
        guard intact else {
            invalidate()
            wasRevoked = true
            return
        }
        for index in expired { startOver(index) }
        for index in channels.indices where channels[index].cookieSaysBound { channels[index].boundUser = owner }
    }

    /// What binding adds to the commit: the marker in a channel first used
    /// after the login, the permanent channel's last-seen time, and the
    /// user's index entry of every bound channel the commit stores or renews.
    ///
    /// - Parameter stored: for each channel, whether the commit stores or renews it.
    /// - Throws: ``SessionConfigurationError`` if libcrypto fails to derive the index's id.
    func bindingChanges(stored: (Int) -> Bool) throws -> SessionChange? {
        guard let user = channels[0].boundUser else { return nil }
        var entries: [String: SessionValue] = [:]
        for index in channels.indices where channels[index].boundUser == user && stored(index) {
            if let id = channels[index].id { entries[id.hex] = .string(channels[index].permanent ? "p" : "n") }
        }
        guard !entries.isEmpty || !droppedFromIndex.isEmpty else { return nil }
        var change = SessionChange(id: try SessionRegistry.indexID(ofUser: user), upserts: entries, removals: droppedFromIndex,
                                   timeToLive: max(context.configuration.permanentTimeToLive, context.configuration.sessionTimeToLive))
        change.keysExpireAlone = true
        return change
    }

    /// At a login, makes room for the session being bound: when the user
    /// already has ``SessionConfiguration/maximumSessionsPerUser`` sessions
    /// or more, the least recently seen are signed out (their data deleted,
    /// their index entries removed) in this request's commit. One more
    /// round trip, at logins only: listing the user's sessions, which also
    /// drops entries of sessions that expired.
    func makeRoomInIndex(of user: String, backend: any SessionBackend) throws {
        let limit = context.configuration.maximumSessionsPerUser
        let listed: [UserSession]
        measures.roundTrips += 1
        do { listed = try SessionRegistry(backend: backend).sessions(ofUser: user) } catch {
            measures.failures += 1
            let failed = SessionError.backendUnavailable(SessionBackendError(error, backend: backend.name))
            recordFailure(failed)
            throw failed
        }
        guard listed.count >= limit else { return }
        for session in listed.suffix(listed.count - limit + 1) {  // listed most recently seen first
            guard let id = SessionID(hex: session.id) else { continue }
            deletedIDs.append(id)
            droppedFromIndex.insert(session.id)
        }
    }

    /// Before the outcome: a browser-session channel that gets a cookie
    /// now in a session known to be bound is bound too, and a bound
    /// permanent channel that is stored records when.
    func prepareBindingForCommit(renewing: (Int) -> Bool) {
        guard let user = channels[0].boundUser else { return }
        for index in channels.indices.dropFirst() where !channels[index].isBound {
            if channels[index].holdsSomething || channels[index].idUsed { bindChannel(index, to: user) }
        }
        if !channels[0].upserts.isEmpty || !channels[0].removals.isEmpty || renewing(0) {
            channels[0].writeServer(Self.seenKey, .int(Int(now)))
        }
    }
}
