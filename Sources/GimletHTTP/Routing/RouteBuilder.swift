/// Something routes and middleware are registered on: a ``Router``, or a
/// ``RouteGroup`` inside one.
///
/// Handlers are synchronous or `async`; a closure with an `await` in it is
/// an async handler. Either kind runs on the worker thread that received
/// the request. Patterns are described at ``Router``.
public protocol RouteBuilder {
    /// Registers `handler` for `method` and `pattern`.
    ///
    /// A malformed pattern or a duplicate registration is reported by
    /// ``Router/validate()``, which the host calls before serving.
    mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions, _ handler: @escaping RequestHandler)

    /// Registers an async `handler` for `method` and `pattern`.
    ///
    /// It runs on the worker thread that received the request, which waits
    /// for it: see ``AsyncRequestHandler``.
    mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions,
                     _ handler: @escaping AsyncRequestHandler)

    /// Adds a middleware around this builder's routes; the first added runs
    /// outermost, wherever the routes are registered relative to it.
    mutating func use(_ middleware: some Middleware)

    /// Adds an async middleware; it takes its place in the same order as
    /// synchronous ones.
    mutating func use(_ middleware: some AsyncMiddleware)

    /// Registers the routes that `build` adds to a group under `prefix`,
    /// with the group's own middleware inside this builder's.
    ///
    /// ```swift
    /// router.group("/api") { api in
    ///     api.use(RequireSignIn())                 // only /api/… routes pass it
    ///     api.get("/items/:id") { request in
    ///         .text("item \(try request.parameters.require("id", as: Int.self))")
    ///     }
    ///     api.get("/*") { _ in throw HTTPError(.notFound, "no such API") }
    /// }
    /// ```
    mutating func group(_ prefix: String, _ build: (inout RouteGroup) throws -> Void) rethrows
}

extension RouteBuilder {
    /// Registers `handler` for `method` and `pattern`, with no options.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping RequestHandler) {
        on(method, pattern, options: [], handler)
    }
    /// Registers an async `handler` for `method` and `pattern`, with no options.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping AsyncRequestHandler) {
        on(method, pattern, options: [], handler)
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
}

/// Routes under a common path prefix with middleware of their own, made by
/// ``RouteBuilder/group(_:_:)``.
///
/// The group's middleware runs only for requests that match one of its
/// routes, inside the middleware of the router (and of the groups around
/// it). A request under the prefix that matches no route is the router's
/// 404 or 405, which the group's middleware does not see; register a
/// catch-all (`group.get("/*") { … }`) to answer those the group's way.
/// Patterns inside the group are relative to its prefix: `"/"` is the
/// prefix itself. The prefix may capture (`"/users/:user"`) but not end in
/// a wildcard.
public struct RouteGroup: RouteBuilder {
    /// A route registered in a group, its pattern relative to the group.
    struct Pending {
        let method: HTTPMethod
        let pattern: String
        let options: RouteOptions
        let chain: MiddlewareChain
    }

    private let prefix: String
    private let prefixIsValid: Bool
    private(set) var routes: [Pending] = []
    private var middleware: [MiddlewareStep] = []
    /// Every middleware of this group and the groups inside it, for the
    /// host's start, reload and stop (``HostLifecycle``).
    private(set) var lifecycle: [any HostLifecycle] = []
    private(set) var problems: [String] = []

    init(prefix: String) {
        self.prefix = prefix
        prefixIsValid = prefix.hasPrefix("/") && !prefix.split(separator: "/").contains("*")
        if !prefixIsValid {
            problems.append("group prefix \(String(reflecting: prefix)) must start with / and may not contain *")
        }
    }

    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping RequestHandler) {
        add(Pending(method: method, pattern: pattern, options: options, chain: MiddlewareChain(handler)))
    }

    public mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions = [],
                            _ handler: @escaping AsyncRequestHandler) {
        add(Pending(method: method, pattern: pattern, options: options, chain: MiddlewareChain(handler)))
    }

    private mutating func add(_ route: Pending) {
        guard route.pattern.hasPrefix("/") else {
            problems.append("pattern \(String(reflecting: route.pattern)) in group \(prefix) must start with /")
            return
        }
        routes.append(route)
    }

    public mutating func use(_ middleware: some Middleware) {
        self.middleware.append(.sync(middleware))
        lifecycle.append(middleware)
    }

    public mutating func use(_ middleware: some AsyncMiddleware) {
        self.middleware.append(.async(middleware))
        lifecycle.append(middleware)
    }

    public mutating func group(_ prefix: String, _ build: (inout RouteGroup) throws -> Void) rethrows {
        let inner = try RouteGroup.built(prefix, build)
        routes += inner.routes
        lifecycle += inner.lifecycle
        problems += inner.problems
    }

    /// The group `build` makes under `prefix`, its routes' patterns made
    /// full (relative to the builder around it) and their chains wrapped in
    /// its middleware.
    static func built(_ prefix: String, _ build: (inout RouteGroup) throws -> Void) rethrows -> RouteGroup {
        var group = RouteGroup(prefix: prefix)
        try build(&group)
        let base = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        let middleware = group.middleware
        // A bad prefix is one problem, not one more per route under it.
        if !group.prefixIsValid { group.routes = [] }
        group.routes = group.routes.map { route in
            Pending(method: route.method, pattern: route.pattern == "/" ? (base.isEmpty ? "/" : base) : base + route.pattern,
                    options: route.options, chain: route.chain.wrapped(in: middleware))
        }
        return group
    }
}
