// The session-lab routes, as a library so tests drive the very same app
// in-process (GimletTesting's TestClient) and live behind nginx.
import Foundation
import Gimlet
import GimletHTTP
import Metrics
import Synchronization

/// The conformance app: the session API over HTTP, text/plain.
public enum SessionLabApp {
    /// How the lab's handlers and its own middleware are written.
    public enum Style: String, Sendable, CaseIterable {
        /// Synchronous closures and middleware.
        case sync
        /// The same code as async handlers and async middleware, each
        /// handler awaiting a value handed back from another thread first:
        /// the suites that run the lab run it this way too, to show an
        /// all-async app behaves exactly as the synchronous one.
        case async

        /// `GIMLET_LAB_STYLE` (`sync` or `async`) from `environment`; `sync` when unset.
        public init(environment: [String: String]) throws {
            guard let value = environment["GIMLET_LAB_STYLE"], !value.isEmpty else { self = .sync; return }
            guard let style = Style(rawValue: value) else {
                throw LabStyleError(description: "GIMLET_LAB_STYLE must be sync or async, not \(value)")
            }
            self = style
        }
    }

    /// The routes, with the session middleware in front.
    ///
    /// - Parameter downloads: where `GET /download/:bytes` keeps and serves
    ///   its files (a 404 without it).
    public static func router(_ configuration: SessionConfiguration, style: Style = .sync,
                              downloads: Downloads? = nil) throws -> Router {
        var router = LabRouter(style: style)
        router.use(try SessionMiddleware(configuration))
        switch style {
        case .sync: router.use(SessionErrorsAsBadRequests())
        case .async: router.use(AsyncSessionErrorsAsBadRequests())
        }
        router.get("/style") { _ in .text(style.rawValue) }

        router.get("/hello") { _ in .text("hello") }

        // Summed over every worker on the Prometheus endpoint, when the
        // lab's main bootstraps ScoreboardMetrics (a no-op otherwise).
        let sets = Counter(label: "lab_sets_total")
        router.get("/set/:key/:value") { request in
            sets.increment()
            let (key, value) = (request.parameters["key"] ?? "", request.parameters["value"] ?? "")
            let (permanent, clientside) = try options(request)
            if permanent == nil && clientside == nil {
                request.session[key] = .string(value)
            } else {
                try request.session.set(key, .string(value), permanent: permanent, clientside: clientside)
            }
            return .text("ok")
        }
        router.get("/get/:key") { request in
            let key = request.parameters["key"] ?? ""
            let (permanent, clientside) = try options(request)
            guard let value = try request.session.get(key, permanent: permanent, clientside: clientside) else {
                throw HTTPError(.notFound, "key \(key) not found")
            }
            return .text(value.text)
        }
        router.get("/has/:key") { request in
            .text(try request.session.contains(request.parameters["key"] ?? "") ? "true" : "false")
        }
        router.get("/delete/:key") { request in
            let key = request.parameters["key"] ?? ""
            guard try request.session.remove(key) != nil else { throw HTTPError(.notFound, "key \(key) not found") }
            return .text("ok")
        }
        router.get("/append/:key/:value") { request in
            let (key, value) = (request.parameters["key"] ?? "", request.parameters["value"] ?? "")
            let session = request.session
            if try session.get(key) == nil { session[key] = [] }
            session[key]?.append(.string(value))
            return .text("ok")
        }
        router.get("/flatten/:key") { request in
            let key = request.parameters["key"] ?? ""
            guard let list = try request.session.get(key)?.arrayValue else {
                throw HTTPError(.notFound, "key \(key) not found")
            }
            return .text(list.map(\.text).joined(separator: ":"))
        }
        router.get("/is_permanent/:key") { request in
            let key = request.parameters["key"] ?? ""
            guard let permanent = try request.session.isPermanent(key) else {
                throw HTTPError(.notFound, "key \(key) not found")
            }
            return .text(permanent ? "true" : "false")
        }
        router.get("/id") { request in .text(request.session.id) }
        router.get("/timestamp") { request in .text(String(request.session.createdTimestamp)) }
        router.get("/time") { request in
            .text(ISO8601DateFormatter().string(from: request.session.createdDate))
        }
        router.get("/len") { request in .text(String(try request.session.count())) }
        router.get("/iter") { request in .text(try request.session.keys().joined(separator: "\n")) }
        router.get("/invalidate") { request in
            request.session.invalidate()
            return .text("ok")
        }
        router.get("/regenerate") { request in
            try request.session.regenerateID()
            return .text("ok")
        }
        router.get("/flash/:message") { request in
            try request.session.flash(request.parameters["message"] ?? "", queue: request.query["queue"] ?? "",
                                      allowDuplicate: request.query["unique"] != "1")
            return .text("ok")
        }
        router.get("/pop_flash") { request in
            .text(try request.session.popFlash(queue: request.query["queue"] ?? "").joined(separator: "\n"))
        }
        router.get("/peek_flash") { request in
            .text(try request.session.peekFlash(queue: request.query["queue"] ?? "").joined(separator: "\n"))
        }
        router.get("/csrf") { request in .text(try request.session.csrfToken()) }
        router.post("/csrf_check") { request in
            try request.session.verifyCSRF(request)
            return .text("ok")
        }
        // Read-modify-write of one server-side key. When a concurrent request
        // changed the counter first, `/counter` (a GET) runs again on the new
        // value; `/counter/once` may not, so it answers 409 then.
        let increment: RequestHandler = { request in
            let session = request.session
            let next = (try session.get("counter", permanent: nil, clientside: false)?.intValue ?? 0) + 1
            try session.set("counter", .int(next), clientside: false)
            return .text(String(next))
        }
        // Two server-side keys in one request: a crash may lose the request,
        // never store one key without the other.
        router.get("/pair/:value") { request in
            let value = SessionValue.string(request.parameters["value"] ?? "")
            try request.session.set("left", value, clientside: false)
            try request.session.set("right", value, clientside: false)
            return .text("ok")
        }
        // Async handlers: the same session API after an await whose value
        // comes back from another thread (as a client library's would).
        router.router.get("/async/get/:key") { request in
            let key = await handedBack(request.parameters["key"] ?? "")
            guard let value = try request.session.get(key) else { throw HTTPError(.notFound, "key \(key) not found") }
            return .text(value.text)
        }
        router.router.get("/async/set/:key/:value") { request in
            let (key, value) = (request.parameters["key"] ?? "", request.parameters["value"] ?? "")
            request.session[await handedBack(key)] = .string(value)
            return .text("ok")
        }
        router.router.get("/async/counter") { request in
            let session = request.session
            let current = try session.get("counter", permanent: nil, clientside: false)?.intValue ?? 0
            let next = await handedBack(current + 1)
            try session.set("counter", .int(next), clientside: false)
            return .text(String(next))
        }
        // /hello and /get/:key as async handlers that never suspend: what the
        // async bridge costs (bench/run's hello-async and read-async).
        router.router.get("/async/hello") { _ async throws -> Response in .text("hello") }
        router.router.get("/async/read/:key") { request async throws -> Response in
            let key = request.parameters["key"] ?? ""
            guard let value = try request.session.get(key) else { throw HTTPError(.notFound, "key \(key) not found") }
            return .text(value.text)
        }
        // The session from child tasks: `async let` appends a mark, a task
        // group of three increments the counter; all in the request's one commit.
        router.router.get("/async/children") { request in
            let session = request.session.shared
            async let marked: Void = session.withSession { session in
                if try session.get("marks") == nil { session["marks"] = [] }
                session["marks"]?.append("child")
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        _ = await handedBack(())
                        try await session.withSession { session in
                            let next = (try session.get("counter", permanent: nil, clientside: false)?.intValue ?? 0) + 1
                            try session.set("counter", .int(next), clientside: false)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await marked
            return .text(String(try await session.get("counter")?.intValue ?? 0))
        }
        router.router.get("/async/crash") { _ async throws -> Response in
            _ = await handedBack(())
            throw LabStyleError(description: "an error that is not an HTTPError")
        }
        // Writes, then waits 200 ms: a client that hangs up meanwhile cancels
        // it (counted at /async/cancelled), and the write is not stored.
        router.router.get("/async/slow-set/:key/:value") { request in
            request.session[request.parameters["key"] ?? ""] = .string(request.parameters["value"] ?? "")
            try? await Task.sleep(for: .milliseconds(200))
            if Task.isCancelled { cancelledHandlers.add(1, ordering: .relaxed) }
            return .text("ok")
        }
        router.router.get("/async/cancelled") { _ in .text(String(cancelledHandlers.load(ordering: .relaxed))) }
        // Waits 50 ms: with every thread on it, synchronous routes wait their turn.
        router.router.get("/async/wait") { _ in
            try await Task.sleep(for: .milliseconds(50))
            return .text("waited")
        }
        // Blocks its worker thread for :ms milliseconds (at most an hour), in
        // synchronous code that no cancellation reaches: a slow or stuck handler.
        router.router.get("/sleep/:ms") { request in
            let milliseconds = min(Int(request.parameters["ms"] ?? "") ?? 0, 3_600_000)
            let end = ContinuousClock.now + .milliseconds(milliseconds)
            // A signal (the host's stack capture) may end a sleep early: sleep the rest.
            while ContinuousClock.now < end { usleep(UInt32(min(1_000_000, max(1, (end - .now).microsecondsRoundedUp)))) }
            return .text("slept \(milliseconds) ms")
        }
        // Awaits :ms milliseconds: a request timeout cancels it (504).
        router.router.get("/async/sleep/:ms") { request in
            let milliseconds = min(Int(request.parameters["ms"] ?? "") ?? 0, 3_600_000)
            try await Task.sleep(for: .milliseconds(milliseconds))
            return .text("slept \(milliseconds) ms")
        }
        router.get("/counter", increment)
        router.get("/counter/once", options: .neverRerun, increment)
        // Sign out everywhere: the login binds the session (new ids) and
        // records the user agent; the list is one session per line (id,
        // created, last seen, agent, tab-separated), the current one marked *.
        router.get("/login/:user") { request in
            try request.session.bind(toUser: request.parameters["user"] ?? "",
                                     recording: ["agent": request.headers["User-Agent"] ?? ""])
            return .text("ok")
        }
        // An access check for the web server in front (nginx's
        // auth_request, Apache's mod_authnz_fcgi): a bound session is let
        // through as its user, anything else is 401. Unbound sessions cost
        // no store round trip; a bound one loads its server-side data once
        // (none more under RevocationCheck.everyRequest, which loaded it).
        router.router.authorizer { request in
            guard let user = try request.session.boundUser else { return .deny(.unauthorized) }
            return .allow(["GIMLET_USER": user])
        }
        router.get("/whoami") { request in
            guard let user = try request.session.boundUser else { throw HTTPError(.notFound, "not signed in") }
            return .text(user)
        }
        router.get("/sessions/:user") { request in
            let current = request.session.id
            let listed = try request.session.registry.sessions(ofUser: request.parameters["user"] ?? "")
            return .text(listed.map { session in
                [(session.id == current ? "*" : "") + session.id, String(session.created), String(session.lastSeen),
                 session.details["agent"] ?? ""].joined(separator: "\t")
            }.joined(separator: "\n"))
        }
        router.get("/logout-everywhere/:user") { request in
            let keep = request.query["keep_current"] == "1"
            let revoked = try request.session.registry.revokeSessions(ofUser: request.parameters["user"] ?? "",
                                                                     keeping: keep ? request.session : nil)
            if !keep { request.session.invalidate() }
            return .text(String(revoked))
        }
        // Uploads of any size (RouteOptions.streamBody: read as they arrive).
        // A multipart form answers a line per part, "name<TAB>filename<TAB>size<TAB>sha256"
        // (filename "-" for a field), its files spooled part by part; any
        // other body is hashed as it arrives, nothing spooled: "-<TAB>-<TAB>size<TAB>sha256".
        router.post("/upload", options: .streamBody) { request in
            if let type = request.contentType, type.lowercased().hasPrefix("multipart/") {
                var lines = ""
                try request.forEachPart { part in
                    let hasher = SHA256Hasher()
                    if let file = part.file { try file.forEachChunk { hasher.update($0) } } else { hasher.update(part.bytes ?? []) }
                    lines += "\(part.name)\t\(part.filename ?? "-")\t\(part.size)\t\(hasher.hexDigest())\n"
                }
                return .text(lines)
            }
            let hasher = SHA256Hasher()
            var size = 0
            try request.body.forEachChunk { chunk in
                size += chunk.count
                hasher.update(chunk)
            }
            return .text("-\t-\t\(size)\t\(hasher.hexDigest())\n")
        }
        // Server-sent events: count events, the i-th with id i and data i,
        // interval_ms apart (default 0), then the end; a heartbeat comment after
        // heartbeat_ms of quiet (default 15 s). While a stream waits
        // no worker thread does; a client that leaves cancels it (counted at
        // /stream/cancelled). Last-Event-ID resumes after that id.
        router.get("/stream/:count") { request in
            guard let count = request.parameters["count"].flatMap({ Int($0) }), (0...1_000_000).contains(count) else {
                throw HTTPError(.badRequest, "a count of 0 to 1000000 events")
            }
            let interval = request.query["interval_ms"].flatMap { Int($0) } ?? 0
            guard (0...3_600_000).contains(interval) else { throw HTTPError(.badRequest, "interval_ms of 0 to 3600000") }
            let first = (request.lastEventID.flatMap { Int($0) } ?? 0) + 1
            let heartbeat = request.query["heartbeat_ms"].flatMap { Int($0) }.map { Duration.milliseconds(max(100, $0)) } ?? .seconds(15)
            return .events(heartbeat: heartbeat) { events in
                do {
                    for index in first...max(first, count) where index <= count {
                        if interval > 0, index > first { try await Task.sleep(for: .milliseconds(interval)) }
                        try await events.send(data: String(index), id: String(index))
                    }
                } catch is CancellationError {
                    SessionLabApp.cancelledStreams.add(1, ordering: .relaxed)
                    throw CancellationError()
                }
            }
        }
        router.get("/stream/cancelled") { _ in .text(String(SessionLabApp.cancelledStreams.load(ordering: .relaxed))) }
        // Downloads: a file of that many bytes whose byte i is i % 251, made
        // on first use, sent by the web server with an offload, else by the host.
        router.get("/download/:bytes") { request in
            guard let downloads, let text = request.parameters["bytes"], text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  text.utf8.count <= 10, let size = Int(text), size <= 1 << 30
            else { throw HTTPError(.notFound) }
            let name = "pattern-\(size).bin"
            // The app's user's alone, like the data directory it may be made in (0700).
            try FileManager.default.createDirectory(atPath: downloads.directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let files = try FileDownloads(root: downloads.directory, offload: downloads.offload)
            try PatternFiles.make(files.root + "/" + name, size: size)
            return try files.response(name, for: request)
        }
        // A file of the downloads directory by name, for the path-confinement
        // tests: the name is one path segment, percent-decoded, so `..%2F…`,
        // `%00` or a symbolic link out reach FileDownloads, which refuses them.
        router.get("/file/:name") { request in
            guard let downloads, let name = request.parameters["name"],
                  let files = try? FileDownloads(root: downloads.directory, offload: downloads.offload)
            else { throw HTTPError(.notFound) }
            return try files.response(name, for: request)
        }
        // Passwords (PasswordHasher) and Authorization headers, for the tests
        // behind nginx and Apache: a form's password is hashed or verified,
        // and the credentials the web server passed are echoed.
        router.post("/password/hash") { request in
            do { return .text(try hasher.hash(request.form["password"] ?? "")) } catch {
                throw HTTPError(.badRequest, "\(error)")
            }
        }
        router.post("/password/verify") { request in
            let matches: Bool
            do { matches = try hasher.verify(request.form["password"] ?? "", against: request.form["hash"] ?? "") } catch {
                throw HTTPError(.badRequest, "\(error)")
            }
            guard matches else { throw HTTPError(.forbidden, "wrong password") }
            return Response(status: .noContent)
        }
        // Accounts (kept in this process) and sign-in throttled in the session store.
        router.post("/signup/:account") { request in
            let hash: String
            do { hash = try hasher.hash(request.form["password"] ?? "") } catch { throw HTTPError(.badRequest, "\(error)") }
            accounts.withLock { $0[request.parameters["account"] ?? ""] = hash }
            return Response(status: .noContent)
        }
        router.post("/signin/:account") { request in
            let account = request.parameters["account"] ?? ""
            guard let backend = configuration.backend else { throw HTTPError(.badRequest, "sign-in needs a session backend") }
            let throttle = SignInThrottle(backend: backend)
            try throttle.attempt(account: account, from: request)
            guard let hash = accounts.withLock({ $0[account] }),
                  (try? hasher.verify(request.form["password"] ?? "", against: hash)) == true
            else { throw HTTPError(.forbidden, "wrong account or password") }
            try throttle.succeeded(account: account)
            return Response(status: .noContent)
        }
        router.get("/authorization") { request in
            switch request.authorization {
            case .basic(let user, let password)?: return .text("basic \(user) \(password)")
            case .bearer(let token)?: return .text("bearer \(token)")
            case nil: throw HTTPError(.unauthorized, "no credentials", headers: ["WWW-Authenticate": "Basic realm=\"lab\""])
            }
        }
        // Not a lab handler itself: it does not count its own runs.
        router.router.get("/runs") { _ in .text(String(handlerRuns.load(ordering: .relaxed))) }
        return router.router
    }

    /// The lab's password hasher: scrypt at its recommended cost.
    static let hasher = PasswordHasher()

    /// Accounts made by `/signup/:account`: name → PHC string (this process only).
    static let accounts = Mutex<[String: String]>([:])

    /// How many `/async/slow-set` handlers saw their task cancelled.
    static let cancelledHandlers = Atomic<Int>(0)

    /// How many times a lab handler registered through ``LabRouter`` ran
    /// since the process started: a test sees by it that a request never
    /// reached a handler.
    static let handlerRuns = Atomic<Int>(0)

    /// `value`, handed back by a callback on another thread.
    static func handedBack<Value: Sendable>(_ value: Value) async -> Value {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: value) }
        }
    }

    /// The `permanent` and `clientside` query options (`0` or `1`).
    static func options(_ request: Request) throws -> (permanent: Bool?, clientside: Bool?) {
        func flag(_ name: String) throws -> Bool? {
            switch request.query[name] {
            case nil: return nil
            case "1", "true": return true
            case "0", "false": return false
            case let other?: throw HTTPError(.badRequest, "\(name) must be 0 or 1, not \(other)")
            }
        }
        return (try flag("permanent"), try flag("clientside"))
    }
}

/// A router whose synchronous-looking handlers are registered in the lab's style.
struct LabRouter {
    var router = Router()
    let style: SessionLabApp.Style

    init(style: SessionLabApp.Style) { self.style = style }

    mutating func use(_ middleware: some Middleware) { router.use(middleware) }
    mutating func use(_ middleware: some AsyncMiddleware) { router.use(middleware) }

    mutating func get(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.get, pattern, options: options, handler)
    }

    mutating func post(_ pattern: String, options: RouteOptions = [], _ handler: @escaping RequestHandler) {
        on(.post, pattern, options: options, handler)
    }

    private mutating func on(_ method: HTTPMethod, _ pattern: String, options: RouteOptions,
                             _ handler: @escaping RequestHandler) {
        switch style {
        case .sync:
            router.on(method, pattern, options: options) { request in
                SessionLabApp.handlerRuns.add(1, ordering: .relaxed)
                return try handler(request)
            }
        case .async:
            router.on(method, pattern, options: options) { request async throws -> Response in
                SessionLabApp.handlerRuns.add(1, ordering: .relaxed)
                _ = await SessionLabApp.handedBack(())
                return try handler(request)
            }
        }
    }
}

/// `GIMLET_LAB_STYLE` was neither `sync` nor `async`.
public struct LabStyleError: Error, CustomStringConvertible {
    public let description: String
}

/// Session misuse by the client (asking for server-side keys with no backend)
/// becomes a 400 that says why; backend failures stay with the session middleware.
struct SessionErrorsAsBadRequests: Middleware {
    func handle(_ request: Request, next: (Request) throws -> Response) throws -> Response {
        do { return try next(request) } catch let error as SessionError where !error.isBackendFailure {
            throw HTTPError(.badRequest, error.description)
        }
    }
}

/// ``SessionErrorsAsBadRequests`` as async middleware.
struct AsyncSessionErrorsAsBadRequests: AsyncMiddleware {
    func handle(_ request: Request, next: (Request) async throws -> Response) async throws -> Response {
        do { return try await next(request) } catch let error as SessionError where !error.isBackendFailure {
            throw HTTPError(.badRequest, error.description)
        }
    }
}

extension Duration {
    /// Whole microseconds, rounded up.
    fileprivate var microsecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1_000_000 + Int((attoseconds + 999_999_999_999) / 1_000_000_000_000)
    }
}

extension SessionLabApp {
    /// Where `GET /download/:bytes` keeps its files (made on first use), and who sends them.
    public struct Downloads: Sendable {
        public var directory: String
        public var offload: FileOffload

        public init(directory: String, offload: FileOffload) {
            self.directory = directory
            self.offload = offload
        }
    }

    /// Event streams whose client left before their last event (their producers cancelled).
    static let cancelledStreams = Atomic<Int>(0)
}

/// The download route's files, made once, whole or not at all.
enum PatternFiles {
    static let lock = Mutex(())

    static func make(_ path: String, size: Int) throws {
        try lock.withLock { _ in
            guard !FileManager.default.fileExists(atPath: path) else { return }
            let partial = path + ".partial"
            _ = FileManager.default.createFile(atPath: partial, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
            let period = (0..<(251 * 4096)).map { UInt8($0 % 251) }
            var written = 0
            while written < size {
                let chunk = period.prefix(size - written)
                try handle.write(contentsOf: chunk)
                written += chunk.count
            }
            try handle.close()
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        }
    }
}
