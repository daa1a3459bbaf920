/// Routes requests by method and path pattern to handlers, through middleware.
///
/// Patterns are `/`-separated segments: a literal, `:name` for one segment
/// (percent-decoded into `request.parameters["name"]`), and a trailing `*`
/// for the rest of the path (`request.parameters["*"]`). Literal segments win
/// over `:name`, which wins over `*`. A path that matches no pattern is a
/// `404`; one that matches only with other methods is a `405` with `Allow`.
/// `HEAD` is served by the `GET` handler (the transport sends no body).
///
/// Errors: an ``HTTPError`` thrown by a handler or a middleware (and the
/// 404/405 answers) becomes a response right there, so every middleware
/// further out sees it as a response (and may, for example, still save a
/// session). Any other error travels up
/// through the middleware as an error and ends as a logged, bare 500.
///
/// Handlers are synchronous or `async`; a closure with an `await` in it is
/// an async handler. Either kind runs on the worker thread that received
/// the request.
///
/// ```swift
/// var router = Router()
/// router.get("/hello/:name") { request in
///     .text("hello, \(request.parameters["name"] ?? "")")
/// }
/// router.get("/slow") { request async throws -> Response in
///     try await Task.sleep(for: .milliseconds(10))
///     return .text("later")
/// }
/// router.get("/static/*") { request in .text(request.parameters["*"] ?? "") }
/// router.use(SomeMiddleware())
/// ```
///
/// A router is a value: configure it, then hand it to the host, which freezes
/// it and shares it with every worker thread.
public struct Router: Responder {
    private var root = RouteNode()
    private var middleware: [Step] = []
    private var problems: [String] = []

    /// An empty router.
    public init() {}

    /// Registers `handler` for `method` and `pattern`.
    ///
    /// A malformed pattern or a duplicate registration is reported by
    /// ``validate()``, which the host calls before serving.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping RequestHandler) {
        add(method, pattern, options: options, .sync(handler))
    }

    /// Registers an async `handler` for `method` and `pattern`.
    ///
    /// It runs on the worker thread that received the request, which waits
    /// for it: see ``AsyncRequestHandler``.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping AsyncRequestHandler) {
        add(method, pattern, options: options, .async(handler))
    }

    private mutating func add(_ method: HTTPMethod, _ pattern: String, options: RouteOptions, _ handler: Route.Handler) {
        switch RoutePattern.parse(pattern) {
        case .failure(let problem):
            problems.append(problem.description)
        case .success(let parsed):
            let route = Route(pattern: pattern, parameterNames: parsed.parameterNames, options: options, handler: handler)
            if !root.insert(route, segments: parsed.segments[...], method: method) {
                problems.append("route \(method) \(pattern) is registered twice")
            }
        }
    }

    /// Registers a `GET` handler (which also serves `HEAD`).
    public mutating func get(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.get, pattern, options: options, handler)
    }
    /// Registers an async `GET` handler (which also serves `HEAD`).
    public mutating func get(_ pattern: String, options: RouteOptions = [], _ handler: @escaping AsyncRequestHandler) {
        on(.get, pattern, options: options, handler)
    }
    /// Registers a `POST` handler.
    public mutating func post(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.post, pattern, options: options, handler)
    }
    /// Registers an async `POST` handler.
    public mutating func post(_ pattern: String, options: RouteOptions = [], _ handler: @escaping AsyncRequestHandler) {
        on(.post, pattern, options: options, handler)
    }
    /// Registers a `PUT` handler.
    public mutating func put(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.put, pattern, options: options, handler)
    }
    /// Registers an async `PUT` handler.
    public mutating func put(_ pattern: String, options: RouteOptions = [], _ handler: @escaping AsyncRequestHandler) {
        on(.put, pattern, options: options, handler)
    }
    /// Registers a `PATCH` handler.
    public mutating func patch(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.patch, pattern, options: options, handler)
    }
    /// Registers an async `PATCH` handler.
    public mutating func patch(_ pattern: String, options: RouteOptions = [], _ handler: @escaping AsyncRequestHandler) {
        on(.patch, pattern, options: options, handler)
    }
    /// Registers a `DELETE` handler.
    public mutating func delete(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.delete, pattern, options: options, handler)
    }
    /// Registers an async `DELETE` handler.
    public mutating func delete(_ pattern: String, options: RouteOptions = [], _ handler: @escaping AsyncRequestHandler) {
        on(.delete, pattern, options: options, handler)
    }

    /// Adds a middleware; the first added runs outermost. Middleware sees every
    /// request, including those that end in 404 or 405.
    public mutating func use(_ middleware: some Middleware) {
        self.middleware.append(.sync(middleware))
    }

    /// Adds an async middleware; it takes its place in the same order as
    /// synchronous ones.
    public mutating func use(_ middleware: some AsyncMiddleware) {
        self.middleware.append(.async(middleware))
    }

    /// One middleware of either kind.
    private enum Step: Sendable {
        case sync(any Middleware)
        case async(any AsyncMiddleware)
    }

    /// - Throws: ``RouterConfigurationError`` listing every malformed or duplicate route.
    public func validate() throws {
        if !problems.isEmpty { throw RouterConfigurationError(problems: problems) }
    }

    /// Reloads every middleware, in order (see ``Responder/reload()``).
    ///
    /// - Throws: the first middleware's error; those after it are not reloaded.
    public func reload() throws {
        for step in middleware {
            switch step {
            case .sync(let middleware): try middleware.reload()
            case .async(let middleware): try middleware.reload()
            }
        }
    }

    /// Shuts every middleware down, innermost first (see ``Responder/shutdown()``).
    public func shutdown() {
        for step in middleware.reversed() {
            switch step {
            case .sync(let middleware): middleware.shutdown()
            case .async(let middleware): middleware.shutdown()
            }
        }
    }

    /// Runs the middleware and the matching handler; errors become responses
    /// (``HTTPError`` its own, anything else a logged 500 with a bare body),
    /// in the form the client accepts (``HTTPError/response(for:)``).
    ///
    /// A request whose async code was cancelled (``Request/cancellation``)
    /// answers that cancellation's status, whatever the handler returned; one
    /// that ran into a wiring mistake (`request.session` without the session
    /// middleware) answers a logged 500, and the process goes on serving.
    public func respond(to request: Request) -> Response {
        do {
            let response = try run(request, middlewareIndex: 0)
            if let wiringError = request.wiringError { return miswired(request, wiringError) }
            if let cancellation = request.cancellation { return cancelled(request, cancellation) }
            return response
        } catch {
            if let wiringError = request.wiringError { return miswired(request, wiringError) }
            if let cancellation = request.cancellation { return cancelled(request, cancellation) }
            request.logger.error("handler failed", metadata: [
                "method": "\(request.method)", "path": "\(request.path)", "error": "\(String(reflecting: error))",
            ])
            return HTTPError(.internalServerError).response(for: request)
        }
    }

    private func miswired(_ request: Request, _ wiringError: String) -> Response {
        request.logger.error("the app is wired wrong; answered 500", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "error": "\(wiringError)",
        ])
        return HTTPError(.internalServerError).response(for: request)
    }

    private func cancelled(_ request: Request, _ cancellation: RequestCancellation) -> Response {
        var response = HTTPError(cancellation.status, "request cancelled: \(cancellation)").response(for: request)
        response.headers["Cache-Control"] = "no-store"
        return response
    }

    /// Runs middleware `middlewareIndex` and everything inside it; an
    /// ``HTTPError`` from any level becomes a response before the next level
    /// out sees it.
    private func run(_ request: Request, middlewareIndex: Int) throws -> Response {
        do {
            guard middlewareIndex < middleware.count else {
                switch try route(request) {
                case .sync(let handler): return try handler(request)
                case .async(let handler): return try WorkerThreadExecutor.run(request, handler)
                }
            }
            switch middleware[middlewareIndex] {
            case .sync(let step):
                return try step.handle(request) { request in try run(request, middlewareIndex: middlewareIndex + 1) }
            case .async:
                return try WorkerThreadExecutor.run(request) { request in
                    try await runAsync(request, middlewareIndex: middlewareIndex)
                }
            }
        } catch let error as HTTPError {
            return error.response(for: request)
        }
    }

    /// ``run(_:middlewareIndex:)`` from async code: async steps are awaited,
    /// synchronous ones called as they are.
    private func runAsync(_ request: Request, middlewareIndex: Int) async throws -> Response {
        do {
            guard middlewareIndex < middleware.count else {
                switch try route(request) {
                case .sync(let handler): return try handler(request)
                case .async(let handler): return try await handler(request)
                }
            }
            switch middleware[middlewareIndex] {
            case .sync(let step):
                return try step.handle(request) { request in try run(request, middlewareIndex: middlewareIndex + 1) }
            case .async(let step):
                return try await step.handle(request) { request in
                    try await runAsync(request, middlewareIndex: middlewareIndex + 1)
                }
            }
        } catch let error as HTTPError {
            return error.response(for: request)
        }
    }

    /// Whether the route `request` matches has ``RouteOptions/streamBody``.
    /// The match is kept on the request, so it is not looked up twice.
    public func streamsBody(_ request: Request) -> Bool {
        guard let handler = try? route(request) else { return false }
        request.matchedHandler = handler
        return request.routeOptions.contains(.streamBody)
    }

    /// The handler of the route `request` matches, with its parameters and
    /// options set on the request; 404, 405 or 400 thrown otherwise.
    private func route(_ request: Request) throws -> Route.Handler {
        if let handler = request.matchedHandler { return handler }
        guard let segments = RoutePattern.decodedSegments(of: request.path) else {
            throw HTTPError(.badRequest, "malformed path: its percent-encoding is not UTF-8")
        }
        // HEAD falls back to GET; no per-request array for that, and the
        // captured values allocate only when a route has parameters.
        var values: [String] = []
        var route = root.find(segments[...], method: request.method, values: &values)
        if route == nil, request.method == .head {
            values.removeAll()
            route = root.find(segments[...], method: .get, values: &values)
        }
        if let route {
            request.routeOptions = route.options
            request.routePattern = route.pattern
            if !route.parameterNames.isEmpty {
                var parameters: [String: String] = [:]
                for (name, value) in zip(route.parameterNames, values) { parameters[name] = value }
                request.parameters = parameters
            }
            return route.handler
        }
        var allowed = Set<HTTPMethod>()
        root.collectMethods(segments[...], into: &allowed)
        guard !allowed.isEmpty else { throw HTTPError(.notFound) }
        if allowed.contains(.get) { allowed.insert(.head) }
        let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        throw HTTPError(.methodNotAllowed, headers: ["Allow": allow])
    }
}

/// How the session middleware may treat a route's handler.
///
/// When a concurrent request of the same session changed a server-side key
/// that this request read and then wrote, the session middleware stores
/// nothing and either runs the handler again on the stored data or answers
/// `409 Conflict`. It re-runs handlers of idempotent methods (`GET`, `HEAD`,
/// `OPTIONS`, `PUT`, `DELETE`: clients may repeat those by themselves anyway)
/// and answers 409 for the others, unless the route says otherwise:
///
/// ```swift
/// router.post("/cart/add", options: .rerunOnSessionConflict) { request in
///     request.session["cart"]?.append(.string(request.form["item"] ?? ""))
///     return .text("added")
/// }
/// router.get("/confirm", options: .neverRerun) { request in … }   // sends a mail
/// ```
public struct RouteOptions: OptionSet, Sendable {
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Re-run the handler on a session conflict whatever the method: its
    /// effects outside the session are none, or may happen twice.
    public static let rerunOnSessionConflict = RouteOptions(rawValue: 1 << 0)

    /// Never re-run the handler, even for an idempotent method: it has
    /// effects outside the session (a mail, a payment) that must not repeat.
    /// A conflict answers 409.
    public static let neverRerun = RouteOptions(rawValue: 1 << 1)

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

/// Routes that could not be registered.
public struct RouterConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One line per problem.
    public let problems: [String]

    public var description: String { "invalid routes: " + problems.joined(separator: "; ") }
}
