import Foundation
import GimletHTTP
import Logging

/// A visitor's session: dict-like key-value storage over two channels.
///
/// The **permanent** channel lives in a long-lived cookie (`gimlet-p`); the
/// **browser-session** channel in a cookie the browser forgets when it closes
/// (`gimlet-n`). Each key lives in one channel, either client-side (in the
/// signed, optionally encrypted cookie) or server-side (in the backend).
///
/// ```swift
/// router.get("/login/:user") { request in
///     let session = request.session
///     session["user"] = .string(request.parameters["user"] ?? "")      // configured defaults
///     try session.set("theme", "dark", permanent: true, clientside: true)
///     try session.regenerateID()                                       // after login
///     return .text("hello \(session["user"]?.text ?? "")")
/// }
/// ```
///
/// I/O: reading cookies costs nothing; the backend is read only when a
/// server-side key is first needed, and then both channels come in one round
/// trip. All writes go out in one round trip after the handler returns.
///
/// A session belongs to its request's thread. Reads that need the backend
/// throw ``SessionError`` when it is down; the subscript, which cannot throw,
/// answers `nil` instead, and the middleware then answers 503 whatever the
/// handler returned.
public final class Session {
    let context: SessionContext
    /// The keys in use when the session began: one request signs with one set.
    let codec: CookieCodec
    let now: Int64
    var channels: [SessionChannel]
    /// Ids whose server-side data is deleted at commit (invalidate, regenerate).
    var deletedIDs: [SessionID] = []
    /// The backend round trips this session made (for the host's figures).
    var measures = BackendMeasures()
    /// A backend failure seen during the request.
    private(set) var failure: SessionError?
    /// Keys whose server-side value the handler read (present or not): if it
    /// writes one of them too, the commit checks that nobody changed it since.
    var readKeys: Set<String> = []
    /// The session was bound to a user and found revoked; it started over.
    var wasRevoked = false
    /// Index entries (channel ids in hex) of the user's sessions a login
    /// signs out to stay within the cap, removed in the commit.
    var droppedFromIndex: Set<String> = []

    init(context: SessionContext, request: Request, now: Int64) {
        let cookies = request.cookies
        self.context = context
        let codec = context.codec
        self.codec = codec
        self.now = now
        // Fields read through the context: copying the whole configuration
        // struct retained and released each of its strings per request.
        channels = [true, false].map { permanent in
            let name = permanent ? context.configuration.permanentCookieName : context.configuration.sessionCookieName
            guard let value = cookies[name] else { return .fresh(permanent: permanent, now: now) }
            switch codec.decode(value, cookieName: name) {
            case .valid(let payload, let stale):
                // A cookie counts only while its channel is alive: idle no
                // longer than the channel's TTL since it was last issued
                // (renewal moves that), and within the absolute lifetime.
                // Checked from the cookie alone: a copy of an idle cookie
                // brings back nothing, client-side values included.
                let idleLimit = permanent ? context.configuration.permanentTimeToLive
                                          : context.configuration.sessionTimeToLive
                let tooOld = context.configuration.absoluteLifetime.map { now - payload.created >= $0 } ?? false
                if now - payload.issued >= idleLimit || tooOld {
                    var channel = SessionChannel.fresh(permanent: permanent, now: now)
                    channel.hadBadCookie = true
                    return channel
                }
                return .restored(payload, permanent: permanent, stale: stale)
            case .invalid(let reason):
                SecurityEvent.rejectedCookie.log("ignoring a session cookie that does not verify", request: request,
                                                 metadata: ["cookie": "\(name)", "reason": "\(reason)"])
                var channel = SessionChannel.fresh(permanent: permanent, now: now)
                channel.hadBadCookie = true
                return channel
            }
        }
        // A bound session is checked now, whatever the handler reads (a
        // failure is kept: the middleware, which makes the session before
        // the handler under every-request, answers 503 without it); under
        // next-server-access, only when a bound channel is due for renewal
        // (once per renew-after), so the user's index is renewed with it.
        if channels[0].cookieSaysBound || channels[1].cookieSaysBound, context.backend != nil,
           context.configuration.revocationCheck == .everyRequest
            || channels.indices.contains(where: { channels[$0].cookieSaysBound && renews($0) }) {
            try? loadServerData()
        }
    }

    // MARK: Identity

    /// The session's id: the permanent channel's, 32 lowercase hex digits.
    /// Reading it makes the permanent cookie carry it.
    public var id: String {
        ensureID(0)
        channels[0].idUsed = true
        return channels[0].id?.hex ?? ""
    }

    /// When the session (its permanent channel) was created, in seconds since 1970.
    public var createdTimestamp: Int64 { channels[0].created }

    /// When the session (its permanent channel) was created.
    public var createdDate: Date { Date(timeIntervalSince1970: TimeInterval(createdTimestamp)) }

    // MARK: Reading

    /// The value of `key`, wherever it is; `nil` if absent.
    ///
    /// Setting stores with the configured defaults, except that a key whose
    /// place is already known (client-side, or server-side and loaded) is
    /// updated where it is, so `session["list"]?.append("x")` keeps it there.
    /// Setting `nil` removes the key everywhere without reading the backend.
    public subscript(key: String) -> SessionValue? {
        get { try? get(key) }
        set {
            guard let newValue else { removeEverywhere(key); return }
            if let place = knownPlace(of: key) {
                store(key, newValue, channel: place.channel, clientside: place.clientside)
            } else {
                storeWithDefaults(key, newValue)
            }
        }
    }

    /// The value of `key`; with `permanent` or `clientside` given, only from
    /// that channel and side (the other option taking its default).
    ///
    /// - Throws: ``SessionError/noBackend`` for `clientside: false` without a
    ///   backend; a backend failure when server-side data had to be loaded.
    public func get(_ key: String, permanent: Bool? = nil, clientside: Bool? = nil) throws -> SessionValue? {
        if permanent == nil && clientside == nil {
            // By index: a `for channel in channels` loop copied each channel and its dictionaries.
            for index in channels.indices { if let value = channels[index].client[key] { return value } }
            guard context.backend != nil else { return nil }
            try loadServerData()
            readKeys.insert(key)
            for index in channels.indices { if let value = channels[index].server[key] { return value } }
            return nil
        }
        let (index, client) = try place(permanent: permanent, clientside: clientside)
        if client { return channels[index].client[key] }
        // A client-side value shadows any server-side copy of the key.
        if channels.indices.contains(where: { channels[$0].client[key] != nil }) { return nil }
        try loadServerData()
        readKeys.insert(key)
        return channels[index].server[key]
    }

    /// The value of `key`, or `defaultValue` if absent.
    public func get(_ key: String, default defaultValue: SessionValue) throws -> SessionValue {
        try get(key) ?? defaultValue
    }

    /// The value of `key` decoded as `type`; `nil` if absent.
    ///
    /// - Throws: a backend failure, or the decoder's error if the value does not fit.
    public func get<T: Decodable>(_ key: String, as type: T.Type) throws -> T? {
        try get(key)?.decode(as: type)
    }

    /// Whether `key` is anywhere in the session.
    public func contains(_ key: String) throws -> Bool { try get(key) != nil }

    /// Every key of both channels, client- and server-side.
    public func keys() throws -> [String] {
        if context.backend != nil { try loadServerData() }
        var keys: [String] = []
        var seen = Set<String>()
        for channel in channels {
            for key in channel.client.keys.sorted() where seen.insert(key).inserted { keys.append(key) }
        }
        for channel in channels {
            for key in channel.server.keys.sorted() where seen.insert(key).inserted { keys.append(key) }
        }
        return keys
    }

    /// The number of keys in both channels.
    public func count() throws -> Int { try keys().count }

    /// Whether `key` is in the permanent channel; `nil` if it is nowhere.
    public func isPermanent(_ key: String) throws -> Bool? {
        for channel in channels where channel.client[key] != nil { return channel.permanent }
        guard context.backend != nil else { return nil }
        try loadServerData()
        for channel in channels where channel.server[key] != nil { return channel.permanent }
        return nil
    }

    // MARK: Writing

    /// Stores `value` under `key` in the chosen channel and side, removing it
    /// from wherever else it was. Nothing is read from the backend.
    ///
    /// - Throws: ``SessionError/noBackend`` for `clientside: false` without a backend.
    public func set(_ key: String, _ value: SessionValue, permanent: Bool? = nil, clientside: Bool? = nil) throws {
        let (index, client) = try place(permanent: permanent, clientside: clientside)
        store(key, value, channel: index, clientside: client)
    }

    /// Stores any `Encodable` (as JSON) under `key`.
    ///
    /// - Throws: the encoder's error, or ``SessionError/noBackend``.
    public func set<T: Encodable>(_ key: String, _ value: T, permanent: Bool? = nil, clientside: Bool? = nil) throws {
        let encoded: SessionValue
        do { encoded = try SessionValue(encoding: value) } catch {
            throw SessionError.notEncodable(key: key, reason: "\(error)")
        }
        try set(key, encoded, permanent: permanent, clientside: clientside)
    }

    /// Removes `key` and returns its old value (`nil` if it was absent).
    ///
    /// - Throws: a backend failure when server-side data had to be loaded to find it.
    @discardableResult
    public func remove(_ key: String) throws -> SessionValue? {
        let old = try get(key)
        if old != nil { removeEverywhere(key) }
        return old
    }

    // MARK: Internals shared by the extensions

    /// Where `set` puts a key given these options.
    func place(permanent: Bool?, clientside: Bool?) throws -> (channel: Int, clientside: Bool) {
        if clientside == false && context.backend == nil { throw SessionError.noBackend }
        let client = clientside ?? context.configuration.resolvedClientsideDefault
        return ((permanent ?? context.configuration.permanentByDefault) ? 0 : 1, client)
    }

    /// Where `key` is, if that is known without I/O.
    func knownPlace(of key: String) -> (channel: Int, clientside: Bool)? {
        for index in channels.indices {
            if channels[index].client[key] != nil { return (index, true) }
            if channels[index].server[key] != nil { return (index, false) }
        }
        return nil
    }

    func storeWithDefaults(_ key: String, _ value: SessionValue) {
        store(key, value, channel: context.configuration.permanentByDefault ? 0 : 1,
              clientside: context.configuration.resolvedClientsideDefault)
    }

    /// Puts `key` in one place and takes it out of the others. A server-side
    /// write deletes other server-side copies in the same commit; a client-side
    /// write shadows a server-side copy it does not know of (client-side values
    /// always win), so it costs no backend I/O.
    func store(_ key: String, _ value: SessionValue, channel target: Int, clientside: Bool) {
        for index in channels.indices {
            if !(index == target && clientside) { _ = channels[index].removeClient(key) }
            if !(index == target && !clientside) {
                if clientside { channels[index].removeServerIfKnown(key) } else { channels[index].removeServer(key) }
            }
        }
        if clientside {
            if channels[target].client[key] != value {
                channels[target].client[key] = value
                channels[target].clientDirty = true
            }
        } else {
            if channels[target].serverLoaded, channels[target].server[key] == value,
               !channels[target].removals.contains(key) { return }
            ensureID(target)
            channels[target].writeServer(key, value)
        }
    }

    func removeEverywhere(_ key: String) {
        for index in channels.indices {
            _ = channels[index].removeClient(key)
            channels[index].removeServer(key)
        }
    }

    func ensureID(_ index: Int) {
        if channels[index].id == nil { channels[index].id = .random() }
    }

    /// Loads both channels' server-side data in one round trip, once.
    func loadServerData() throws {
        if let failure { throw failure }
        guard let backend = context.backend else { return }
        let pending = channels.indices.filter { !channels[$0].serverLoaded }
        guard !pending.isEmpty else { return }
        let ids = pending.compactMap { channels[$0].mayHaveServerData ? channels[$0].id : nil }
        var loaded: [SessionID: [String: SessionValue]] = [:]
        if !ids.isEmpty {
            let started = ContinuousClock.now
            measures.roundTrips += 1
            defer { measures.load += .now - started }
            do {
                // Checked here, not only inside: the closure call cost an untraced request some instructions.
                loaded = RequestTracing.isOn
                    ? try SessionTracing.span("session load", backend: backend) { try backend.load(ids) } : try backend.load(ids)
            } catch {
                measures.failures += 1
                let failed = SessionError.backendUnavailable(SessionBackendError(error, backend: backend.name))
                failure = failed
                throw failed
            }
        }
        for index in pending {
            let values = channels[index].id.flatMap { loaded[$0] } ?? [:]
            channels[index].applyLoaded(values)
        }
        checkBinding()
    }

    func recordFailure(_ error: SessionError) { failure = error }
}

@available(*, unavailable)
extension Session: Sendable {}
