import GimletHTTP

extension Session {
    /// This session as a `Sendable` value, for the child tasks of an async
    /// handler (`async let`, task groups) and other concurrent code of the
    /// request.
    ///
    /// ```swift
    /// router.get("/dashboard") { request async throws -> Response in
    ///     let session = request.session.shared
    ///     async let user = session.get("user")
    ///     async let cart = session.withSession { try $0.get("cart")?.arrayValue?.count ?? 0 }
    ///     return .text("\(try await user?.text ?? "guest"): \(try await cart) items")
    /// }
    /// ```
    ///
    /// Take it inside the handler's async code; a value taken in synchronous
    /// code, or used after the request ended, throws
    /// ``SessionError/usedOutsideItsRequest``.
    public var shared: SharedSession { SharedSession(self, thread: WorkerThread.current) }
}

/// A request's ``Session`` for concurrent code of its async handler: child
/// tasks, task groups, an unstructured task the handler awaits.
///
/// Every use runs on the request's worker thread, where the session lives:
/// child tasks of the handler run there already and use it at once; other
/// code hops there for the length of the synchronous closure. Changes are
/// stored with the request's other changes, in its one commit.
public struct SharedSession: Sendable {
    private let session: WorkerThreadBound
    private let thread: WorkerThread?

    init(_ session: Session, thread: WorkerThread?) {
        self.session = WorkerThreadBound(value: session)
        self.thread = thread
    }

    /// Runs `body` with the session, on the request's worker thread; the
    /// whole ``Session`` API is available in it. `body` is synchronous: no
    /// other code of the request runs while it does.
    ///
    /// - Throws: what `body` throws, or ``SessionError/usedOutsideItsRequest``
    ///   once the request is over.
    public func withSession<Value>(_ body: (Session) throws -> Value) async throws -> Value {
        let session = self.session
        guard let thread, let value = try await thread.run({ try body(session.value) }) else {
            throw SessionError.usedOutsideItsRequest
        }
        return value
    }

    /// The value for `key` (``Session/get(_:permanent:clientside:)``).
    public func get(_ key: String) async throws -> SessionValue? {
        try await withSession { try $0.get(key) }
    }

    /// Stores `value` under `key` (`Session.set(_:_:permanent:clientside:)`).
    public func set(_ key: String, _ value: SessionValue) async throws {
        try await withSession { try $0.set(key, value) }
    }

    /// Removes `key` and returns what it held (``Session/remove(_:)``).
    @discardableResult
    public func remove(_ key: String) async throws -> SessionValue? {
        try await withSession { try $0.remove(key) }
    }
}

/// The session, carried to other tasks of its request.
///
/// `@unchecked Sendable`: `value` is read only inside
/// ``WorkerThread/run(_:)``'s synchronous closure, which runs only on the
/// request's worker thread while its request runs. That thread runs one
/// job at a time, and the request's synchronous code (its middleware) never
/// runs concurrently with its async code, so the session is never used by
/// two threads, nor by two pieces of code at once.
private struct WorkerThreadBound: @unchecked Sendable {
    let value: Session
}
