@_spi(GimletInlined) import GimletSystem
import GimletHTTP
import Logging
import Synchronization

/// What every session of one middleware shares: the validated configuration
/// and the keys derived from it, which ``reload()`` replaces.
final class SessionContext: Sendable {
    let configuration: SessionConfiguration
    // protected by: the mutex; the keys now in use (a reload swaps them, a
    // session takes them once).
    private let keys: Mutex<CookieCodec>
    var backend: (any SessionBackend)? { configuration.backend }

    init(_ configuration: SessionConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        keys = Mutex(try Self.codec(configuration))
    }

    /// What a request without the session middleware gets a throwaway
    /// session from: a random secret, no backend; nothing of it is kept.
    static let unwired: SessionContext = {
        do {
            return try SessionContext(SessionConfiguration(secrets: [SessionID.random().hex + SessionID.random().hex]))
        } catch {
            preconditionFailure("a random 64-hex-digit secret was refused: \(error)")
        }
    }()

    /// The signing and encryption keys now in use.
    var codec: CookieCodec { keys.withLock { $0 } }

    /// Reads the configuration's secret files again and puts their keys in
    /// use; `false` when it names no file. On an error the keys stay.
    func reload() throws(SessionConfigurationError) -> Bool {
        guard configuration.secretFile != nil || configuration.encryptionKeyFile != nil else { return false }
        var fresh = configuration
        try fresh.readSecretFiles()
        let codec = try Self.codec(fresh)
        keys.withLock { $0 = codec }
        return true
    }

    private static func codec(_ configuration: SessionConfiguration) throws(SessionConfigurationError) -> CookieCodec {
        let encryptionKeys = configuration.encryptionKey.map { [$0] + configuration.retiredEncryptionKeys } ?? []
        return try CookieCodec(secrets: configuration.secrets, encryptionKeys: encryptionKeys)
    }
}

/// Gives every request a ``Session`` (as `request.session`) and, after the
/// handler, stores what changed.
///
/// ```swift
/// var router = Router()
/// router.use(try SessionMiddleware(SessionConfiguration(secrets: [secret], backend: MemoryBackend())))
/// router.get("/") { request in
///     let visits = (request.session["visits"]?.intValue ?? 0) + 1
///     request.session["visits"] = .int(visits)
///     return .text("visit \(visits)")
/// }
/// ```
///
/// - Cookies are read without backend I/O; the backend is read only when a
///   server-side key is needed, both channels in one round trip.
/// - After the handler: one backend round trip for all changes (none if
///   nothing changed server-side), and a `Set-Cookie` only for channels that
///   need one. A request that never touches `request.session` costs
///   nothing, but that under ``RevocationCheck/everyRequest`` a session
///   bound to a user is checked (one load) before the handler runs.
/// - A response that touched the session gets `Vary: Cookie`; one that sets a
///   cookie gets `Cache-Control: private` unless it set its own.
/// - A backend failure answers `503`, whatever the handler returned, so a
///   `2xx` always means the changes were stored. A cookie over 4096 bytes
///   answers `500` with a log line saying which.
/// - Read-modify-write is checked: if the handler read a server-side key
///   and wrote it, and a concurrent request changed that key in between, the
///   commit stores nothing. The handler then runs again on the stored data
///   (idempotent methods, or routes with
///   `RouteOptions.rerunOnSessionConflict`; at most 20 times) or the request
///   answers `409 Conflict`. Requests that only read, or write keys they did
///   not read, never conflict and never wait.
public struct SessionMiddleware: Middleware {
    let context: SessionContext

    /// Validates `configuration` and derives the cookie keys.
    ///
    /// - Throws: ``SessionConfigurationError`` saying what to fix.
    public init(_ configuration: SessionConfiguration) throws {
        context = try SessionContext(configuration)
    }

    /// The configuration in use (its secrets and keys as they were first
    /// read; ``reload()`` does not change them here).
    public var configuration: SessionConfiguration { context.configuration }

    /// Reads the configuration's ``SessionConfiguration/secretFile`` and
    /// ``SessionConfiguration/encryptionKeyFile`` again and signs and
    /// encrypts with what they hold from the next request on. The host calls
    /// it on `SIGHUP`. Nothing happens when the configuration names no file.
    ///
    /// - Throws: ``SessionConfigurationError`` if a file cannot be read or
    ///   holds a bad value; the keys in use stay.
    public func reload() throws {
        _ = try context.reload()
    }

    /// Shuts the backend down: its background work stops.
    public func shutdown() {
        context.backend?.shutdown()
    }

    /// How often a handler is re-run after conflicts before the request answers 409.
    static let maximumReruns = 20

    public func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        var reruns = 0
        while true {
            let holder = SessionHolder(context: context)
            request.storage[SessionHolderKey.self] = holder
            let conflict: SessionConflictError
            let outcome = try attempt(request, holder: holder, next: next)
            if let session = holder.made ?? holder.prepared { request.measures += session.measures }
            switch outcome {
            case .answered(let response): return response
            case .conflicted(let error): conflict = error
            }
            // Nothing was stored. Running the handler again on what the store
            // holds now is right when repeating it is harmless (see RouteOptions).
            let options = request.routeOptions
            // A streamed body is gone once read: such a handler cannot run again.
            let mayRerun = !options.contains(.neverRerun) && !options.contains(.streamBody)
                && (request.method.isIdempotent || options.contains(.rerunOnSessionConflict))
            guard mayRerun, reruns < Self.maximumReruns else {
                SecurityEvent.sessionConflict.log("session changed concurrently; nothing stored, answered 409", request: request,
                                                  metadata: ["error": "\(conflict)", "reruns": "\(reruns)"])
                var response = HTTPError(.conflict, "Conflict: the session changed during this request; nothing was stored, try again")
                    .response(for: request)
                response.headers["Cache-Control"] = "no-store"
                return response
            }
            reruns += 1
            request.logger.debug("session changed concurrently; running the handler again", metadata: [
                "error": "\(conflict)", "path": "\(request.path)",
            ])
            Self.backOff(before: reruns)
        }
    }

    /// Sleeps a random while, up to 50 µs doubling per re-run (at most 6.4
    /// ms), before a re-run: requests that keep colliding on one key fall
    /// out of step instead of colliding again (without it, sixteen
    /// connections on one counter ran 0.3% of requests out of re-runs).
    static func backOff(before rerun: Int) {
        guard rerun > 1 else { return }
        let limit = 50 << min(rerun - 1, 7)
        let microseconds = Int.random(in: 0...limit)
        SystemCall.sleep(microseconds: microseconds)
    }

    private enum Attempt {
        case answered(Response)
        case conflicted(SessionConflictError)
    }

    /// Runs the rest of the chain once and stores what the session changed.
    private func attempt(_ request: Request, holder: SessionHolder, next: (Request) throws -> Response) throws -> Attempt {
        // A bound session is checked before the handler runs: one whose
        // check cannot run (the store is down) never reaches it, so a revoked
        // session's thief causes nothing while the store is away.
        if let prepared = holder.checkBindingFirst(for: request), let failure = prepared.failure {
            return .answered(unavailable(failure, request: request))
        }
        var response: Response
        do {
            response = try next(request)
        } catch let error as SessionError where error.isBackendFailure {
            return .answered(unavailable(error, request: request))
        }
        guard let session = holder.made else { return .answered(response) }
        response.headers.add("Vary", "Cookie")
        if session.wasRevoked {
            request.logger.info("session revoked (its user's sessions were signed out); it started over empty",
                                metadata: ["path": "\(request.path)"])
        }
        // Cancelled (the web server gave up on the request, or its deadline
        // passed): store nothing; the router answers with an error status.
        if request.cancellation != nil { return .answered(response) }
        if let failure = session.failure { return .answered(unavailable(failure, request: request)) }

        let outcome: Session.Outcome
        do {
            outcome = try session.outcome(secure: request.isSecure)
        } catch {
            request.logger.error("session not stored", metadata: ["error": "\(error)", "path": "\(request.path)"])
            return .answered(HTTPError(.internalServerError).response(for: request))
        }
        if !outcome.changes.isEmpty, let backend = context.backend {
            let started = ContinuousClock.now
            session.measures.roundTrips += 1
            defer { session.measures.commit += .now - started }
            do {
                if RequestTracing.isOn {
                    try SessionTracing.span("session commit", backend: backend) { try backend.commit(outcome.changes) }
                } else {
                    try backend.commit(outcome.changes)
                }
            } catch let conflict as SessionConflictError {
                return .conflicted(conflict)
            } catch {
                session.measures.failures += 1
                return .answered(unavailable(.backendUnavailable(SessionBackendError(error, backend: backend.name)),
                                             request: request))
            }
        }
        if !outcome.cookies.isEmpty {
            for cookie in outcome.cookies { response.headers.add("Set-Cookie", cookie) }
            if !response.headers.contains("Cache-Control") { response.headers["Cache-Control"] = "private" }
        }
        return .answered(response)
    }

    private func unavailable(_ error: SessionError, request: Request) -> Response {
        var metadata: Logger.Metadata = ["error": "\(error)"]
        if let code = error.backendError?.code { metadata["backend_code"] = "\(code)" }
        request.logger.error("session backend unavailable; answered 503", metadata: metadata)
        var response = HTTPError(.serviceUnavailable, "Service Unavailable: session storage is unreachable",
                                 headers: ["Retry-After": "1"]).response(for: request)
        response.headers["Cache-Control"] = "no-store"
        return response
    }
}

/// The request's session, made the first time the handler asks for it: a
/// request that never does decodes no cookie and verifies no signature
/// (but that under every-request with a backend, a request carrying a
/// session cookie has it made before the handler, to check a binding).
final class SessionHolder {
    let context: SessionContext
    /// The session, once the handler asked for it.
    private(set) var made: Session?
    /// The session made before the handler to check its binding; the
    /// handler gets this one if it asks.
    private(set) var prepared: Session?

    init(context: SessionContext) { self.context = context }

    func session(for request: Request) -> Session {
        if let made { return made }
        let session = prepared ?? Session(context: context, request: request, now: context.configuration.clock.now())
        made = session
        return session
    }

    /// Under ``RevocationCheck/everyRequest`` with a backend, makes the
    /// session before the handler when the request carries a session
    /// cookie, so a bound one is checked (one load) before the handler
    /// can act; `nil` otherwise. An unbound session costs its cookies'
    /// decoding here and no I/O; it counts as used (`Vary`, cookies,
    /// commit) only if the handler asks for it.
    func checkBindingFirst(for request: Request) -> Session? {
        let configuration = context.configuration
        guard configuration.revocationCheck == .everyRequest, context.backend != nil else { return nil }
        let cookies = request.cookies
        guard cookies[configuration.permanentCookieName] != nil || cookies[configuration.sessionCookieName] != nil
        else { return nil }
        let session = Session(context: context, request: request, now: configuration.clock.now())
        prepared = session
        return session
    }
}

enum SessionHolderKey: RequestStorageKey { typealias Value = SessionHolder }

extension Request {
    /// The request's session, made by ``SessionMiddleware``.
    ///
    /// Using it marks the response as depending on cookies (`Vary: Cookie`).
    /// Using it in an app without `SessionMiddleware` is a programming
    /// error: that request gets a throwaway session and, whatever the handler
    /// returns, a 500 with a log line saying how to fix it. Other requests go
    /// on as before.
    public var session: Session {
        if let holder = storage[SessionHolderKey.self] { return holder.session(for: self) }
        wiringError = "request.session used, but SessionMiddleware is not installed: router.use(try SessionMiddleware(configuration))"
        let holder = SessionHolder(context: SessionContext.unwired)
        storage[SessionHolderKey.self] = holder
        return holder.session(for: self)
    }
}
