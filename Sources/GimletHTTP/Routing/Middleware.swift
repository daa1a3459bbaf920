/// Something that turns a request into a response, and never fails:
/// errors have become error responses by the time it returns.
///
/// ``Router`` is the usual responder; transports (FastCGI, SCGI) and the
/// host take any responder.
public protocol Responder: HostLifecycle {
    /// Answers `request`.
    func respond(to request: Request) -> Response

    /// Whether the handler of `request` reads its body as it arrives
    /// (``RouteOptions/streamBody``), so the transport must not read it
    /// first. Asked before the body is read, only when there may be one;
    /// `false` by default.
    func streamsBody(_ request: Request) -> Bool
}

extension Responder {
    public func streamsBody(_ request: Request) -> Bool { false }
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
///
/// A middleware takes part in the host's start, reload and stop
/// (``HostLifecycle``, nothing by default): the router it is added to calls
/// its `validate`, `reload` and `shutdown`.
public protocol Middleware: HostLifecycle {
    /// Handles `request`, usually by calling `next`.
    ///
    /// - Throws: ``HTTPError`` for a chosen status; any other error becomes a logged 500.
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response
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
/// request (see ``AsyncRequestHandler``). It takes part in the host's start,
/// reload and stop as a synchronous middleware does (``HostLifecycle``).
public protocol AsyncMiddleware: HostLifecycle {
    /// Handles `request`, usually by awaiting `next`.
    ///
    /// - Throws: ``HTTPError`` for a chosen status; any other error becomes a logged 500.
    func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response
}

/// A route handler.
public typealias RequestHandler = @Sendable (Request) throws -> Response

/// An async route handler. It runs on the worker thread that received the
/// request, like a synchronous one: blocking calls in it block only that
/// thread, and the session works as in a synchronous handler.
public typealias AsyncRequestHandler = @Sendable (Request) async throws -> Response
