/// One of the session's two channels: its id, creation time, client-side
/// values, and what is known and pending of its server-side values.
struct SessionChannel {
    let permanent: Bool
    /// `nil` until the channel needs one (something stored, or the id read).
    var id: SessionID?
    var created: Int64
    /// When the incoming cookie was issued (0 without one).
    var issued: Int64
    /// A valid cookie for this channel came with the request.
    var hadCookie: Bool
    /// An unreadable cookie came with the request (tampered, old secret gone, …).
    var hadBadCookie: Bool
    /// The cookie must be sent again whatever else happens (retired secret, old format, new id).
    var mustReissue: Bool
    /// The id was handed out (`session.id`), so the cookie must carry it.
    var idUsed = false
    /// The incoming cookie said the store may hold data for this channel.
    var cookieSaysServerData = false
    /// The incoming cookie said the channel is bound to a user.
    var cookieSaysBound = false
    /// The user the channel is bound to, once known: bound in this request,
    /// or its marker loaded and checked.
    var boundUser: String?

    var client: [String: SessionValue]
    var clientDirty = false

    /// Server-side values as the request sees them; complete only when `serverLoaded`.
    var server: [String: SessionValue] = [:]
    /// Server-side values as the store held them when loaded (what a
    /// read-modify-write expects to find at commit).
    var stored: [String: SessionValue] = [:]
    var serverLoaded: Bool
    /// Pending server-side writes and deletions, committed in one round trip.
    var upserts: [String: SessionValue] = [:]
    var removals: Set<String> = []

    /// A channel with no cookie: nothing server-side to load.
    static func fresh(permanent: Bool, now: Int64) -> SessionChannel {
        SessionChannel(permanent: permanent, id: nil, created: now, issued: 0, hadCookie: false,
                       hadBadCookie: false, mustReissue: false, client: [:], serverLoaded: true)
    }

    /// A channel read from a valid cookie; its server-side values are not loaded yet.
    static func restored(_ payload: CookiePayload, permanent: Bool, stale: Bool) -> SessionChannel {
        var channel = SessionChannel(
            permanent: permanent, id: payload.id, created: payload.created, issued: payload.issued, hadCookie: true,
            hadBadCookie: false, mustReissue: stale, client: payload.client,
            serverLoaded: !payload.hasServerData)
        channel.cookieSaysServerData = payload.hasServerData
        channel.cookieSaysBound = payload.bound
        return channel
    }

    /// Whether the store may hold data for this channel from earlier requests.
    var mayHaveServerData: Bool { hadCookie && cookieSaysServerData && id != nil }

    /// Whether the channel is bound to a user (its cookie must say so).
    var isBound: Bool { boundUser != nil || cookieSaysBound }

    /// Whether the cookie sent now must say the store may hold data.
    var willHaveServerData: Bool { mayHaveServerData || !upserts.isEmpty }

    /// For each key read from the store and now written or removed, what
    /// the store held when it was read: the commit's compare-and-set. Only a
    /// channel whose id came with the request can be changed concurrently.
    func expectations(readKeys: Set<String>) -> [String: SessionChange.ExpectedValue] {
        guard hadCookie, !readKeys.isEmpty, !(upserts.isEmpty && removals.isEmpty) else { return [:] }
        var expected: [String: SessionChange.ExpectedValue] = [:]
        for key in readKeys where upserts[key] != nil || removals.contains(key) {
            expected[key] = stored[key].map { .value($0) } ?? .absent
        }
        return expected
    }

    /// Whether this channel has something to keep (so a new one needs its cookie).
    var holdsSomething: Bool { !client.isEmpty || !upserts.isEmpty || (serverLoaded && !server.isEmpty) }

    mutating func applyLoaded(_ values: [String: SessionValue]) {
        stored = values
        server = values
        for key in removals { server[key] = nil }
        for (key, value) in upserts { server[key] = value }
        serverLoaded = true
    }

    // The isEmpty checks spare a hash of the key: a lookup hashes it even in an empty dictionary.

    mutating func writeServer(_ key: String, _ value: SessionValue) {
        upserts[key] = value
        if !removals.isEmpty { removals.remove(key) }
        server[key] = value
    }

    /// Deletes `key` server-side. Without the data loaded it deletes blindly,
    /// and only where earlier requests may have stored something.
    mutating func removeServer(_ key: String) {
        let known = !server.isEmpty && server.removeValue(forKey: key) != nil
        if !upserts.isEmpty { upserts.removeValue(forKey: key) }
        if (known || !serverLoaded) && mayHaveServerData { removals.insert(key) }
    }

    /// Deletes `key` server-side only if it is known to be there (no blind delete).
    mutating func removeServerIfKnown(_ key: String) {
        if serverLoaded || (!upserts.isEmpty && upserts[key] != nil) { removeServer(key) }
    }

    mutating func removeClient(_ key: String) -> SessionValue? {
        guard !client.isEmpty, let old = client.removeValue(forKey: key) else { return nil }
        clientDirty = true
        return old
    }
}
