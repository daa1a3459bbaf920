/// Routes requests by method and path pattern to handlers, through middleware.
///
/// Patterns are `/`-separated segments: a literal, `:name` for one segment
/// (percent-decoded into `request.parameters["name"]`, or converted with
/// ``RouteParameters``' `require(_:as:)`, which answers 400 for a bad value),
/// and a trailing `*` that catches the rest of the path, however deep
/// (`request.parameters["*"]`). Literal segments win over `:name`, which
/// wins over `*`. Routes under a common prefix, with middleware of their
/// own, form a group (``RouteBuilder/group(_:_:)``). A path that matches no pattern is a
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
/// router.group("/api") { api in
///     api.use(RequireSignIn())
///     api.delete("/items/:id") { request in
///         let id = try request.parameters.require("id", as: Int.self)
///         return .text("deleted \(id)")
///     }
/// }
/// ```
///
/// A router is a value: configure it, then hand it to the host, which freezes
/// it and shares it with every worker thread.
public struct Router: Responder, RouteBuilder {
    private var root = RouteNode()
    /// The router's own middleware, outermost first.
    private var middleware: [MiddlewareStep] = []
    /// Every middleware, the groups' included, and every part given to
    /// ``manage(_:)``, in the order registered.
    private var lifecycle: [any HostLifecycle] = []
    private var problems: [String] = []
    /// The access check that FastCGI `AUTHORIZER` requests go to, whatever
    /// their path (`authorizer(_:_:)`).
    private var authorizer: Route?
    /// The middleware around the routing, composed again after each
    /// registration, so a request only calls through it.
    private var chain: MiddlewareChain

    /// An empty router.
    public init() {
        chain = Router.compose(root: RouteNode(), authorizer: nil, middleware: [])
    }

    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping RequestHandler) {
        add(method, pattern, options: options, MiddlewareChain(handler))
        recompose()
    }

    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping AsyncRequestHandler) {
        add(method, pattern, options: options, MiddlewareChain(handler))
        recompose()
    }

    private mutating func add(_ method: HTTPMethod, _ pattern: String, options: RouteOptions, _ chain: MiddlewareChain) {
        switch RoutePattern.parse(pattern) {
        case .failure(let problem):
            problems.append(problem.description)
        case .success(let parsed):
            let route = Route(pattern: pattern, parameterNames: parsed.parameterNames, options: options, chain: chain)
            if !root.insert(route, segments: parsed.segments[...], method: method) {
                problems.append("route \(method) \(pattern) is registered twice")
            }
        }
    }

    /// Adds a middleware; the first added runs outermost. The router's
    /// middleware sees every request, including those that end in 404 or
    /// 405, wherever the routes are registered relative to it.
    public mutating func use(_ middleware: some Middleware) {
        self.middleware.append(.sync(middleware))
        lifecycle.append(middleware)
        recompose()
    }

    /// Adds an async middleware; it takes its place in the same order as
    /// synchronous ones.
    public mutating func use(_ middleware: some AsyncMiddleware) {
        self.middleware.append(.async(middleware))
        lifecycle.append(middleware)
        recompose()
    }

    public mutating func group(_ prefix: String, _ build: (inout RouteGroup) throws -> Void) rethrows {
        let group = try RouteGroup.built(prefix, build)
        for route in group.routes { add(route.method, route.pattern, options: route.options, route.chain) }
        lifecycle += group.lifecycle
        problems += group.problems
        recompose()
    }

    /// Registers an access check for the web server in front (see
    /// ``AccessDecision``): a route at `pattern` (a literal path) that
    /// answers any method, for nginx's `auth_request` (whose subrequest
    /// carries the client's method), and also every request in the FastCGI
    /// `AUTHORIZER` role (Apache's `mod_authnz_fcgi`), whatever its path.
    /// The router's middleware (the session's) runs around it as around any
    /// route. A second registration is reported by ``validate()``.
    ///
    /// ```swift
    /// router.authorizer { request in
    ///     guard let user = try request.session.get("user", clientside: true)?.stringValue else {
    ///         return .deny(.unauthorized)
    ///     }
    ///     return .allow(["GIMLET_USER": user])
    /// }
    /// ```
    ///
    /// A check that reads only client-side keys makes no store round trip.
    /// A session change it makes reaches the browser only under Apache
    /// (nginx drops the subrequest's headers).
    public mutating func authorizer(_ pattern: String = "/-/authorize",
                                    _ check: @escaping @Sendable (Request) throws -> AccessDecision) {
        addAuthorizer(pattern, MiddlewareChain { request in
            try check(request).response(authorizerRole: request.isAuthorizerRole)
        })
    }

    /// Registers an async access check (see the synchronous `authorizer(_:_:)`).
    public mutating func authorizer(_ pattern: String = "/-/authorize",
                                    _ check: @escaping @Sendable (Request) async throws -> AccessDecision) {
        addAuthorizer(pattern, MiddlewareChain { request async throws -> Response in
            try await check(request).response(authorizerRole: request.isAuthorizerRole)
        })
    }

    private mutating func addAuthorizer(_ pattern: String, _ chain: MiddlewareChain) {
        if authorizer != nil { problems.append("an authorizer is registered twice") }
        if pattern.contains(":") || pattern.contains("*") {
            problems.append("the authorizer's pattern \(String(reflecting: pattern)) must be a literal path")
        }
        authorizer = Route(pattern: pattern, parameterNames: [], options: [], chain: chain)
        add(.get, pattern, options: [], chain)
        recompose()
    }

    private mutating func recompose() {
        chain = Router.compose(root: root, authorizer: authorizer, middleware: middleware)
    }

    private static func compose(root: RouteNode, authorizer: Route?, middleware: [MiddlewareStep]) -> MiddlewareChain {
        MiddlewareChain(routing: { request in try Router.route(request, in: root, authorizer: authorizer) })
            .wrapped(in: middleware)
    }

    /// Adds a part that is not a middleware to the host's start, reload and
    /// stop (see ``HostLifecycle``), in its place among the middleware.
    public mutating func manage(_ part: some HostLifecycle) {
        lifecycle.append(part)
    }

    /// Checks the routes, then validates every middleware, the groups'
    /// included, and every managed part, in the order they were registered.
    ///
    /// - Throws: ``RouterConfigurationError`` listing every malformed or
    ///   duplicate route; otherwise the first part's error.
    public func validate() throws {
        if !problems.isEmpty { throw RouterConfigurationError(problems: problems) }
        for part in lifecycle { try part.validate() }
    }

    /// Reloads every middleware, the groups' included, and every managed
    /// part, in the order they were registered (see ``HostLifecycle/reload()``).
    ///
    /// - Throws: the first part's error; those after it are not reloaded.
    public func reload() throws {
        for part in lifecycle { try part.reload() }
    }

    /// Shuts every middleware, the groups' included, and every managed part
    /// down, the last registered first (see ``HostLifecycle/shutdown()``).
    public func shutdown() {
        for part in lifecycle.reversed() { part.shutdown() }
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
            let response = try chain.call(request)
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

    /// Whether the route `request` matches has ``RouteOptions/streamBody``.
    /// The match is kept on the request, so it is not looked up twice.
    public func streamsBody(_ request: Request) -> Bool {
        guard let chain = try? Router.route(request, in: root, authorizer: authorizer) else { return false }
        request.matchedRoute = chain
        return request.routeOptions.contains(.streamBody)
    }

    /// The chain of the route `request` matches in `root`, with its
    /// parameters and options set on the request; 404, 405 or 400 thrown
    /// otherwise. A request in the FastCGI `AUTHORIZER` role goes to
    /// `authorizer` (a flag the transport set, no environ search).
    private static func route(_ request: Request, in root: RouteNode, authorizer: Route?) throws -> MiddlewareChain {
        if let chain = request.matchedRoute { return chain }
        // The flag first: binding the route would retain its parts on every request.
        if request.isAuthorizerRole, let authorizer {
            request.routePattern = authorizer.pattern
            return authorizer.chain
        }
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
                request.parameters = RouteParameters(names: route.parameterNames, values: values)
            }
            return route.chain
        }
        // nginx's auth subrequest carries the client's method (a POST to a
        // protected location asks the check with POST): the check answers
        // any method. Looked at only here, where a request found no route.
        if let authorizer, request.path == authorizer.pattern {
            request.routePattern = authorizer.pattern
            return authorizer.chain
        }
        var allowed = Set<HTTPMethod>()
        root.collectMethods(segments[...], into: &allowed)
        guard !allowed.isEmpty else { throw HTTPError(.notFound) }
        if allowed.contains(.get) { allowed.insert(.head) }
        let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        throw HTTPError(.methodNotAllowed, headers: ["Allow": allow])
    }
}

/// Routes that could not be registered.
public struct RouterConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One line per problem.
    public let problems: [String]

    public var description: String { "invalid routes: " + problems.joined(separator: "; ") }
}
