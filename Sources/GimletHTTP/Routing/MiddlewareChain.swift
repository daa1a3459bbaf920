/// One middleware of either kind, as registered.
enum MiddlewareStep: Sendable {
    case sync(any Middleware)
    case async(any AsyncMiddleware)
}

/// A chain of middleware around a handler, from some level inward, composed
/// once when routes and middleware are registered: callable from synchronous
/// code (``call``) and from async code (``callAsync``).
///
/// Each level turns an ``HTTPError`` into its response before the level
/// outside it sees it. A synchronous level is called as it is from either
/// side, so a chain of synchronous middleware around a synchronous handler
/// never touches the async machinery. An async level called from
/// synchronous code runs on the worker thread's executor
/// (``WorkerThreadExecutor/run(_:_:)``); once in async code, the rest of the
/// chain is awaited, except below a synchronous level, whose `next` is
/// synchronous.
struct MiddlewareChain: Sendable {
    typealias Call = @Sendable (Request) throws -> Response
    typealias CallAsync = @Sendable (Request) async throws -> Response

    let call: Call
    let callAsync: CallAsync

    /// A synchronous handler, alone.
    init(_ handler: @escaping RequestHandler) {
        let call: Call = { request in
            do { return try handler(request) } catch let error as HTTPError { return error.response(for: request) }
        }
        self.call = call
        callAsync = call
    }

    /// An async handler, alone.
    init(_ handler: @escaping AsyncRequestHandler) {
        let callAsync: CallAsync = { request in
            do { return try await handler(request) } catch let error as HTTPError { return error.response(for: request) }
        }
        self.init(async: callAsync)
    }

    /// A level whose own work is async.
    private init(async callAsync: @escaping CallAsync) {
        self.callAsync = callAsync
        call = { request in try WorkerThreadExecutor.run(request, callAsync) }
    }

    /// A level that calls `body` from either side.
    private init(sync call: @escaping Call) {
        self.call = call
        callAsync = call
    }

    /// A level that routes the request through `lookup` to the chain of the
    /// route it matches (each route's chain holds its groups' middleware).
    init(routing lookup: @escaping @Sendable (Request) throws -> MiddlewareChain) {
        call = { request in
            do { return try lookup(request).call(request) } catch let error as HTTPError { return error.response(for: request) }
        }
        callAsync = { request in
            do { return try await lookup(request).callAsync(request) } catch let error as HTTPError { return error.response(for: request) }
        }
    }

    /// This chain with `steps` around it, the first outermost.
    func wrapped(in steps: [MiddlewareStep]) -> MiddlewareChain {
        var chain = self
        for step in steps.reversed() { chain = chain.wrapped(in: step) }
        return chain
    }

    private func wrapped(in step: MiddlewareStep) -> MiddlewareChain {
        switch step {
        case .sync(let middleware):
            let next = call
            return MiddlewareChain(sync: { request in
                do { return try middleware.handle(request, next: next) } catch let error as HTTPError { return error.response(for: request) }
            })
        case .async(let middleware):
            let next = callAsync
            return MiddlewareChain(async: { request in
                do { return try await middleware.handle(request, next: next) } catch let error as HTTPError { return error.response(for: request) }
            })
        }
    }
}
