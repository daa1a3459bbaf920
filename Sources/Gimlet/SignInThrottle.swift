import GimletHTTP

/// Limits sign-in attempts per account and per client address, counted in
/// the session store, so every worker process and every host that shares
/// the store sees the same counts: one round trip per attempt, atomic
/// (``SessionBackend/increment(_:window:)``).
///
/// Every attempt counts, before the password is checked; a successful one
/// clears the account's count (one more round trip, on success only). Past
/// a limit the attempt is refused with `429 Too Many Requests` and a
/// `Retry-After` saying when the window ends, without checking the password.
///
/// ```swift
/// let throttle = SignInThrottle(backend: backend)
/// router.post("/signin") { request in
///     let name = request.form["name"] ?? ""
///     try throttle.attempt(account: name, from: request)            // 429 past the limits
///     guard let account = accounts[name],
///           try hasher.verify(request.form["password"] ?? "", against: account.hash)
///     else { throw HTTPError(.forbidden, "wrong name or password") }
///     try throttle.succeeded(account: name)
///     try request.session.bind(toUser: account.id)
///     return .redirect(to: "/")
/// }
/// ```
public struct SignInThrottle: Sendable {
    /// Where the counts are kept: the sessions' store.
    public let backend: any SessionBackend
    /// Attempts one account may have in a window (5 by default).
    public var attemptsPerAccount: Int
    /// Attempts one client address may have in a window, all accounts together (20 by default).
    public var attemptsPerClient: Int
    /// The window, in seconds (15 minutes by default); it starts at the first attempt.
    public var window: Int64

    /// A throttle counting in `backend`.
    public init(backend: any SessionBackend, attemptsPerAccount: Int = 5, attemptsPerClient: Int = 20, window: Int64 = 900) {
        self.backend = backend
        self.attemptsPerAccount = attemptsPerAccount
        self.attemptsPerClient = attemptsPerClient
        self.window = window
    }

    /// Counts an attempt to sign in to `account` from `client` (an address;
    /// `nil` counts the account alone) and says whether it may go on.
    ///
    /// - Returns: `nil` when it may; otherwise the seconds until it may try again.
    /// - Throws: ``SessionBackendError`` if the store cannot be reached.
    public func count(account: String, client: String?) throws -> Int64? {
        var counters = [try Self.counterID("account", account)]
        if let client { counters.append(try Self.counterID("client", client)) }
        let counts = try backend.increment(counters, window: window)
        var retryAfter: Int64?
        if let accountCount = counts.first, accountCount.count > attemptsPerAccount {
            retryAfter = accountCount.secondsLeft
        }
        if counts.count > 1, counts[1].count > attemptsPerClient {
            retryAfter = max(retryAfter ?? 0, counts[1].secondsLeft)
        }
        return retryAfter.map { max(1, $0) }
    }

    /// Counts an attempt to sign in to `account` from the request's client
    /// (`REMOTE_ADDR`, as the web server passed it).
    ///
    /// - Throws: `HTTPError` 429 with `Retry-After` past a limit; a backend
    ///   failure (``SessionError``, which the middleware answers 503).
    public func attempt(account: String, from request: Request) throws {
        let retryAfter: Int64?
        do { retryAfter = try count(account: account, client: request.remoteAddress) } catch {
            throw SessionError.backendUnavailable(SessionBackendError(error, backend: backend.name))
        }
        guard let retryAfter else { return }
        SecurityEvent.signInThrottled.log("sign-in attempts over the limit; answered 429", request: request)
        throw HTTPError(.tooManyRequests, "too many sign-in attempts; try again later",
                        headers: ["Retry-After": String(retryAfter)])
    }

    /// Clears `account`'s count after a successful sign-in.
    ///
    /// - Throws: ``SessionBackendError`` if the store cannot be reached.
    public func succeeded(account: String) throws {
        try backend.commit([SessionChange(id: try Self.counterID("account", account), removeAll: true, timeToLive: window)])
    }

    /// The counter of `name` in `kind` (`account`, `client`): an id no
    /// session channel has, the same on every host (HKDF-SHA-256).
    static func counterID(_ kind: String, _ name: String) throws -> SessionID {
        try SessionID.derived(from: name, namespace: "gimlet-sign-in-throttle", info: kind)
    }
}
