/// What a route tells the layers around its handler.
///
/// `GimletHTTP` defines ``streamBody``; other layers define their own
/// options as extensions, each on a bit of its own (the session
/// middleware's `rerunOnSessionConflict` and `neverRerun`, in `Gimlet`).
/// Bits 0 to 15 are Gimlet's; an app's own layer may use the others.
///
/// ```swift
/// router.post("/upload", options: .streamBody) { request async throws in … }
/// ```
public struct RouteOptions: OptionSet, Sendable {
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The handler reads the request body as it arrives
    /// (``RequestBody/chunks``, ``RequestBody/forEachChunk(_:)``): the host
    /// does not read it first, nor keep it in memory or a file, and only
    /// `--max-body` bounds it. Such a handler is never re-run on a session
    /// conflict (its body is gone); a conflict answers 409.
    ///
    /// ```swift
    /// router.post("/upload", options: .streamBody) { request async throws in
    ///     var size = 0
    ///     for try await chunk in request.body.chunks { size += chunk.count }
    ///     return .text("\(size) bytes")
    /// }
    /// ```
    public static let streamBody = RouteOptions(rawValue: 1 << 2)
}

