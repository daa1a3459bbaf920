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
    /// - Throws: ``SessionBackendError`` if the store cannot be reached or refuses;
    ///   nothing may be taken as persisted then.
    func commit(_ changes: [SessionChange]) throws

    /// Whether several processes see the same data (false for the memory backend).
    var sharesAcrossProcesses: Bool { get }

    /// A short name for logs, such as `redis://127.0.0.1:6379/0`.
    var name: String { get }
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

    public init(id: SessionID, removeAll: Bool = false, upserts: [String: SessionValue] = [:],
                removals: Set<String> = [], timeToLive: Int64) {
        self.id = id
        self.removeAll = removeAll
        self.upserts = upserts
        self.removals = removals
        self.timeToLive = timeToLive
    }

    /// Whether the change only renews the expiry.
    public var isRenewalOnly: Bool { !removeAll && upserts.isEmpty && removals.isEmpty }
}

/// A backend that could not do its job; the request gets `503`.
public struct SessionBackendError: Error, Sendable, CustomStringConvertible {
    /// The backend's name.
    public let backend: String
    /// What failed, with the store's own message when there is one.
    public let message: String

    public init(backend: String, message: String) {
        self.backend = backend
        self.message = message
    }

    public var description: String { "session backend \(backend): \(message)" }
}
