/// Server-side storage for session data, one value per (channel id, key).
///
/// Every method is one round trip to the store: the session loads both
/// channels with one ``load(_:)`` and writes everything a request changed with
/// one ``commit(_:)``. Methods are called from worker threads concurrently;
/// an implementation that holds a connection per thread or a pool must keep
/// each connection on one thread at a time.
///
/// ```swift
/// struct MyBackend: SessionBackend {
///     func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]] { … }
///     func commit(_ changes: [SessionChange]) throws { … }
/// }
/// ```
public protocol SessionBackend: Sendable {
    /// The data of each id that exists and has not expired; absent ids are left out.
    ///
    /// - Throws: ``SessionBackendError`` if the store cannot be reached.
    func load(_ ids: [SessionID]) throws -> [SessionID: [String: SessionValue]]

    /// Applies every change at once: per-key upserts and removals, deletion of
    /// whole channels, and the renewed expiry of each channel touched.
    ///
    /// Compare-and-set: if any change's ``SessionChange/expected`` key no
    /// longer holds what the request read (another request changed it since),
    /// nothing at all is applied and ``SessionConflictError`` is thrown. The
    /// check and the writes must be one atomic step in the store. A commit
    /// with no expectations never conflicts.
    ///
    /// - Throws: ``SessionConflictError`` as above; ``SessionBackendError`` if
    ///   the store cannot be reached or refuses. Nothing may be taken as
    ///   persisted then.
    func commit(_ changes: [SessionChange]) throws

    /// Whether several processes see the same data (false for the memory backend).
    var sharesAcrossProcesses: Bool { get }

    /// A short name for logs, such as `redis://127.0.0.1:6379/0`.
    var name: String { get }

    /// Stops the backend's background work and waits for it (the host calls
    /// it through ``SessionMiddleware`` once the last request is answered).
    /// Nothing by default.
    func shutdown()

    /// The channels an index channel lists, with their values of `keys`:
    /// `index`'s keys are channel ids in hex (``SessionRegistry``'s index
    /// of a user's sessions). Channels no longer stored are left out, and
    /// their entries may be deleted from the index meanwhile.
    ///
    /// By default a ``load(_:)`` of the index, one of the channels, and a
    /// ``commit(_:)`` dropping stale entries; a backend that can do it in
    /// one round trip does.
    ///
    /// - Throws: ``SessionBackendError`` if the store cannot be reached.
    func loadIndexed(_ index: SessionID, keys: [String]) throws -> [SessionID: [String: SessionValue]]

    /// Deletes every channel `index` lists but those in `keeping`, and
    /// their entries in the index, as one step where the store allows;
    /// returns the entries (channel id and the entry's value) of the
    /// channels deleted that were still stored.
    ///
    /// By default a ``load(_:)`` of the index, one of the channels, and one
    /// ``commit(_:)``; a backend that can do it in one round trip does.
    ///
    /// - Throws: ``SessionBackendError`` if the store cannot be reached;
    ///   nothing may be taken as deleted then.
    func deleteIndexed(_ index: SessionID, keeping: Set<SessionID>) throws -> [SessionID: SessionValue]

    /// Adds one to each counter and returns, in the same order, each one's
    /// value after it and the seconds it has left: one round trip, one
    /// atomic step, so every process and host sharing the store counts
    /// together (``SignInThrottle`` keeps its counts so). A counter that does
    /// not exist or has expired starts at 1 and lives `window` seconds;
    /// counting does not extend it. A counter is stored as a channel with
    /// one key, `n`: a ``commit(_:)`` that removes the channel resets it.
    ///
    /// By default a ``load(_:)`` and a ``commit(_:)``, which is not atomic:
    /// two requests at once may both count the same value. Every backend of
    /// Gimlet's does it in one step.
    ///
    /// - Throws: ``SessionBackendError`` if the store cannot be reached.
    func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter]
}

/// A counter's value after ``SessionBackend/increment(_:window:)``, and how long it has left.
public struct SessionCounter: Sendable, Equatable {
    /// The count, this increment included.
    public var count: Int
    /// Seconds until the counter expires and starts again from zero.
    public var secondsLeft: Int64

    /// A counter at `count` with `secondsLeft` to live.
    public init(count: Int, secondsLeft: Int64) {
        self.count = count
        self.secondsLeft = secondsLeft
    }

    /// The key a counter's value is stored under in its channel.
    public static let key = "n"
}

extension SessionBackend {
    public func shutdown() {}

    public func loadIndexed(_ index: SessionID, keys: [String]) throws -> [SessionID: [String: SessionValue]] {
        let entries = try load([index])[index] ?? [:]
        let ids = entries.keys.compactMap { SessionID(hex: $0) }
        let found = ids.isEmpty ? [:] : try load(ids)
        let stale = Set(entries.keys.filter { key in SessionID(hex: key).map { found[$0] == nil } ?? true })
        if !stale.isEmpty { try commit([SessionChange(id: index, removals: stale, timeToLive: 0)]) }
        let wanted = Set(keys)
        return found.mapValues { $0.filter { wanted.contains($0.key) } }
    }

    public func increment(_ counters: [SessionID], window: Int64) throws -> [SessionCounter] {
        let found = try load(counters)
        let counts = counters.map { (found[$0]?[SessionCounter.key]?.intValue ?? 0) + 1 }
        try commit(zip(counters, counts).map { id, count in
            SessionChange(id: id, upserts: [SessionCounter.key: .int(count)], timeToLive: window)
        })
        // Without the stored expiry, the window is taken as starting now.
        return counts.map { SessionCounter(count: $0, secondsLeft: window) }
    }

    public func deleteIndexed(_ index: SessionID, keeping: Set<SessionID>) throws -> [SessionID: SessionValue] {
        let entries = try load([index])[index] ?? [:]
        var listed: [SessionID: SessionValue] = [:]
        var removals = Set<String>()
        for (key, value) in entries {
            let id = SessionID(hex: key)
            if let id, keeping.contains(id) { continue }
            removals.insert(key)
            if let id { listed[id] = value }
        }
        guard !removals.isEmpty else { return [:] }
        let stored = listed.isEmpty ? [:] : try load(Array(listed.keys))
        try commit(listed.keys.map { SessionChange(id: $0, removeAll: true, timeToLive: 0) }
            + [SessionChange(id: index, removals: removals, timeToLive: 0)])
        return listed.filter { stored[$0.key] != nil }
    }
}

/// What one request changes in one channel's server-side data.
public struct SessionChange: Sendable, Equatable {
    /// The channel.
    public var id: SessionID
    /// Delete everything stored under `id` before applying the rest (invalidate).
    public var removeAll: Bool
    /// Keys to write, with their new values.
    public var upserts: [String: SessionValue]
    /// Keys to delete.
    public var removals: Set<String>
    /// Seconds from now until the channel's data expires, applied when the
    /// change writes keys or is a pure renewal (removals alone renew nothing).
    public var timeToLive: Int64
    /// Keys the request read from the store and now writes or removes, with
    /// what it read: the commit applies only if each still holds exactly that
    /// (see ``SessionBackend/commit(_:)``). Empty for blind writes.
    public var expected: [String: ExpectedValue]
    /// Each key this change writes gets ``timeToLive`` on its own; the
    /// channel's other keys are neither renewed nor swept by it. A user's
    /// index (``SessionRegistry``) is written so: its entries live as long
    /// as the channels they name, and a commit costs the same however many
    /// entries the index holds. A store that keeps one expiry per channel
    /// (Redis, the memory backend) renews the channel, which costs no more.
    public var keysExpireAlone = false

    /// What a read-modify-write request saw of a key when it loaded it.
    public enum ExpectedValue: Sendable, Equatable {
        /// The key was not stored (or had expired).
        case absent
        /// The key held this value.
        case value(SessionValue)
    }

    /// A change to the channel `id`; by default one that only renews its expiry.
    public init(id: SessionID, removeAll: Bool = false, upserts: [String: SessionValue] = [:],
                removals: Set<String> = [], timeToLive: Int64, expected: [String: ExpectedValue] = [:]) {
        self.id = id
        self.removeAll = removeAll
        self.upserts = upserts
        self.removals = removals
        self.timeToLive = timeToLive
        self.expected = expected
    }

    /// Whether the change only renews the expiry.
    public var isRenewalOnly: Bool { !removeAll && upserts.isEmpty && removals.isEmpty }
}

/// A backend that could not do its job; the request gets `503`.
///
/// The one error that crosses from a backend to the session: a backend turns
/// its store's error (GimletRedis's `RedisError`, GimletSQLite's
/// `SQLiteError`) into this once, keeping the store's code and message, and
/// the session carries it unchanged (``SessionError/backendError``) to the
/// middleware's 503 and its log line.
public struct SessionBackendError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The backend's name.
    public let backend: String
    /// What failed, with the store's own message when there is one.
    public let message: String
    /// The store's own code for the failure, when it gave one: a Redis
    /// error reply's first word (`WRONGTYPE`, `NOAUTH`, `READONLY`, `OOM`),
    /// hiredis's error kind (`REDIS_ERR_IO` for a reset or a timeout,
    /// `REDIS_ERR_EOF`, …), SQLite's result code (`SQLITE_BUSY`,
    /// `SQLITE_READONLY`, `SQLITE_FULL`, …).
    public let code: String?

    /// The backend `backend` failed with `message`, and the store's `code` if it gave one.
    public init(backend: String, message: String, code: String? = nil) {
        self.backend = backend
        self.message = message
        self.code = code
    }

    /// `error` as a failure of `backend`: itself when it is one already,
    /// else its description, once. What the session does with whatever a
    /// backend throws, on load and on commit alike.
    public init(_ error: any Error, backend: String) {
        if let error = error as? SessionBackendError {
            self = error
        } else {
            self.init(backend: backend, message: "\(error)")
        }
    }

    /// `session backend NAME: MESSAGE`.
    public var description: String { "session backend \(backend): \(message)" }
}

/// A commit refused because a key the request read and wrote was changed by
/// another request in between; nothing of the commit was applied.
///
/// The session middleware re-runs a handler whose route allows it
/// (`RouteOptions.rerunOnSessionConflict`) and answers `409 Conflict` otherwise.
public struct SessionConflictError: Error, Sendable, CustomStringConvertible {
    /// The backend's name.
    public let backend: String
    /// The keys found changed, where the backend can tell (it may stop at the first).
    public let keys: [String]

    /// The backend `backend` found `keys` changed.
    public init(backend: String, keys: [String]) {
        self.backend = backend
        self.keys = keys
    }

    /// Names the backend and the keys; says nothing was stored.
    public var description: String {
        "session backend \(backend): concurrently changed key(s) \(keys.joined(separator: ", ")); nothing stored"
    }
}
