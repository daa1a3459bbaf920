/// Something that turns a request into a response, and never fails:
/// errors have become error responses by the time it returns.
///
/// ``Router`` is the usual responder; transports (FastCGI, SCGI) and the
/// host take any responder.
public protocol Responder: Sendable {
    /// Answers `request`.
    func respond(to request: Request) -> Response

    /// Checks the configuration before the first request is accepted.
    ///
    /// - Throws: an error that says what is wrong and how to fix it.
    func validate() throws

    /// Re-reads what the responder reads from files (a secret file after a
    /// rotation). The host calls it on `SIGHUP` when it serves in one
    /// process; under `--workers`, `SIGHUP` starts fresh workers instead.
    ///
    /// - Throws: an error that says what could not be read; what was in
    ///   use stays in use.
    func reload() throws

    /// Stops the responder's background work (a backend's sweeper) and
    /// closes what it holds, once the last request has been answered. The
    /// host calls it once, when it stops serving; nothing by default.
    func shutdown()

    /// Whether the handler of `request` reads its body as it arrives
    /// (``RouteOptions/streamBody``), so the transport must not read it
    /// first. Asked before the body is read, only when there may be one;
    /// `false` by default.
    func streamsBody(_ request: Request) -> Bool
}

extension Responder {
    public func streamsBody(_ request: Request) -> Bool { false }
    public func validate() throws {}
    public func reload() throws {}
    public func shutdown() {}
}

/// A step around every request: it may inspect or change the request, answer
/// by itself, or call `next` and then inspect or change the response.
///
/// ```swift
/// struct Timing: Middleware {
///     func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
///         let start = ContinuousClock.now
///         var response = try next(request)
///         response.headers.add("Server-Timing", "app;dur=\(ContinuousClock.now - start)")
///         return response
///     }
/// }
/// router.use(Timing())
/// ```
public protocol Middleware: Sendable {
    /// Handles `request`, usually by calling `next`.
    ///
    /// - Throws: ``HTTPError`` for a chosen status; any other error becomes a logged 500.
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response

    /// Re-reads what the middleware reads from files (see ``Responder/reload()``); nothing by default.
    func reload() throws

    /// Stops the middleware's background work (see ``Responder/shutdown()``); nothing by default.
    func shutdown()
}

extension Middleware {
    public func reload() throws {}
    public func shutdown() {}
}

/// A step around every request, in async code: it may await before and
/// after the rest of the chain. Async and synchronous middleware mix freely
/// in one router, in the order they were added.
///
/// ```swift
/// struct Audit: AsyncMiddleware {
///     let log: AuditLog   // an actor, say
///     func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
///         let response = try await next(request)
///         await log.record(request.path, response.status)
///         return response
///     }
/// }
/// router.use(Audit(log: log))
/// ```
///
/// Like an async handler, it runs on the worker thread that received the
/// request (see ``AsyncRequestHandler``).
public protocol AsyncMiddleware: Sendable {
    /// Handles `request`, usually by awaiting `next`.
    ///
    /// - Throws: ``HTTPError`` for a chosen status; any other error becomes a logged 500.
    func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response

    /// Re-reads what the middleware reads from files (see ``Responder/reload()``); nothing by default.
    func reload() throws

    /// Stops the middleware's background work (see ``Responder/shutdown()``); nothing by default.
    func shutdown()
}

extension AsyncMiddleware {
    public func reload() throws {}
    public func shutdown() {}
}

/// A route handler.
public typealias RequestHandler = @Sendable (Request) throws -> Response

/// An async route handler. It runs on the worker thread that received the
/// request, like a synchronous one: blocking calls in it block only that
/// thread, and the session works as in a synchronous handler.
public typealias AsyncRequestHandler = @Sendable (Request) async throws -> Response
