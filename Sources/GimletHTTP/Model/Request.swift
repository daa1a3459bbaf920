import Logging
import Tracing

/// One HTTP request, as the web server handed it over in a CGI environ.
///
/// A request lives on the worker thread that handles it and is never shared
/// with another thread. Query string, form body and cookies are parsed on
/// first use and cached.
///
/// The routed ``path`` is the path part of `REQUEST_URI`, still
/// percent-encoded, so that a `%2F` inside a parameter stays part of it;
/// without `REQUEST_URI` it is `SCRIPT_NAME` + `PATH_INFO`.
///
/// ```swift
/// router.post("/login") { request in
///     let user = request.form["user"] ?? ""
///     let agent = request.headers["User-Agent"] ?? "?"
///     return .text("hello \(user) on \(agent)")
/// }
/// ```
public final class Request {
    /// The CGI environ: every parameter the server sent.
    public let environ: CGIEnvironment
    /// The request body: in memory, in a temporary file, or (for a route
    /// with ``RouteOptions/streamBody``) still arriving; see ``RequestBody``.
    public let body: RequestBody
    /// The request method (`REQUEST_METHOD`).
    public let method: HTTPMethod
    /// The path, percent-encoded, without the query string.
    public let path: String
    /// The raw query string without `?` (`QUERY_STRING`, else the query part of `REQUEST_URI`).
    public let queryString: String
    /// Parameters captured by the route (`:name` segments, `*` for a wildcard), percent-decoded.
    public internal(set) var parameters = RouteParameters()
    /// The options of the route that matched (empty until the router has routed the request).
    public internal(set) var routeOptions: RouteOptions = []
    /// The logger for this request; its lines carry `request_id` when the request has an ``id``.
    public var logger: Logger
    /// The request's id: the web server's `X-Request-Id` (nginx's
    /// `$request_id`, see the recipes) or one the host made; it is sent back
    /// as the response's `X-Request-Id` and is on the host's log lines about
    /// the request. `nil` unless the host's operator tools are on (an access
    /// log, the status page, …).
    public package(set) var id: String?
    /// Values that middleware attaches to the request (see ``RequestStorage``).
    public var storage = RequestStorage()
    /// Why the request was cancelled, if it was: the web server closed the
    /// connection (while async code waited, or in the middle of the body),
    /// or the request's deadline passed. Nothing of a cancelled request's
    /// session is stored, and its answer is an error whatever the handler
    /// returned.
    public internal(set) var cancellation: RequestCancellation? {
        get { cancelledBecause ?? (body.endedEarly ? .connectionClosed : nil) }
        set { cancelledBecause = newValue }
    }
    private var cancelledBecause: RequestCancellation?
    /// The connection the worker thread watches while async code of this
    /// request waits (set by the transport).
    package var connectionWatch: ConnectionWatch?
    /// When async code of this request is cancelled (a request timeout).
    package var deadline: ContinuousClock.Instant?
    /// The pattern of the route that matched (`/users/:id`), set by the router.
    package internal(set) var routePattern: String?
    /// The multipart form, once ``multipartForm(limits:)`` has read it.
    var parsedMultipartForm: MultipartForm?
    /// The route that matched (its handler inside its groups' middleware),
    /// when the router looked it up before the body was read
    /// (``Router/streamsBody(_:)``).
    var matchedRoute: MiddlewareChain?
    /// Whether the request came in the FastCGI `AUTHORIZER` role (Apache's
    /// `mod_authnz_fcgi`): an access check for the resource at its path,
    /// with no body. The transport knows it from the FastCGI record (no
    /// environ search); a request made from an environ reads `FCGI_ROLE`.
    public internal(set) var isAuthorizerRole = false
    /// The context of the request's server span, when the app bootstrapped a
    /// tracer (see swift-distributed-tracing): the parent of the spans a
    /// handler starts (it is also `InstrumentationContext.current` while the
    /// responder runs); `nil` without a tracer.
    public var traceContext: InstrumentationContext? { trace?.context }
    /// The request's trace id (32 hex digits) when a tracer propagates W3C
    /// trace context: on its log lines and in the access log.
    package var traceID: String? { trace?.traceID }
    /// The two above, set when a tracer is bootstrapped.
    var trace: RequestTrace?
    /// What this request spent on backing stores (the session's store);
    /// the host reports it.
    package var measures = BackendMeasures()
    /// A mistake in the app's wiring that this request ran into, such as
    /// `request.session` without the session middleware: the router logs it
    /// and answers 500 for this request alone, whatever the handler returned.
    package var wiringError: String?

    /// Creates a request from a CGI environ and body.
    ///
    /// - Parameters:
    ///   - environ: the CGI parameters (`REQUEST_METHOD`, `REQUEST_URI`, `HTTP_*`, …).
    ///   - body: the request body.
    ///   - logger: the logger handlers should use.
    public convenience init(environ: CGIEnvironment, body: [UInt8] = [], logger: Logger = Request.defaultLogger) {
        self.init(environ: environ, body: RequestBody(body), logger: logger)
        isAuthorizerRole = environ["FCGI_ROLE"] == "AUTHORIZER"
    }

    /// Creates a request whose body is read from its transport (see ``RequestBody``).
    package convenience init(environ: CGIEnvironment, body: RequestBody, logger: Logger) {
        self.init(environ: environ, line: RequestLine(environ), body: body, logger: logger)
    }

    /// Creates a request whose method, path and query string the transport
    /// has found already (``RequestLine``, shared with the host's monitor).
    package init(environ: CGIEnvironment, line: RequestLine, body: RequestBody, logger: Logger) {
        self.environ = environ
        self.body = body
        self.logger = logger
        self.method = line.method
        self.queryString = line.queryString
        self.path = line.path
    }

    /// Creates a request from a CGI environ given as a dictionary.
    public convenience init(environ: [String: String], body: [UInt8] = [], logger: Logger = Request.defaultLogger) {
        self.init(environ: CGIEnvironment(environ), body: body, logger: logger)
    }

    /// The logger used when none is given: swift-log's, labelled `gimlet`.
    public static let defaultLogger = Logger(label: "gimlet")

    /// The request headers, looked up in the environ.
    public var headers: RequestHeaders { RequestHeaders(environ: environ) }

    /// The decoded query string.
    public private(set) lazy var query: URLEncodedForm = URLEncodedForm(queryString)

    /// The decoded `application/x-www-form-urlencoded` body; empty for other
    /// content types, and for a body that could not be read.
    public private(set) lazy var form: URLEncodedForm = {
        guard let type = contentType, mediaTypeIs(type, "application/x-www-form-urlencoded"),
              let bytes = try? body.bytesForParsing()
        else { return URLEncodedForm() }
        return URLEncodedForm(bytes: bytes)
    }()

    /// The request cookies, first occurrence of a name winning.
    public private(set) lazy var cookies: [String: String] = CookieHeader.parse(environ["HTTP_COOKIE"] ?? "")

    /// `CONTENT_TYPE`, if any.
    public var contentType: String? {
        guard let value = environ["CONTENT_TYPE"], !value.isEmpty else { return nil }
        return value
    }

    /// Whether the client reached the server over TLS (`HTTPS=on`/`1` or `REQUEST_SCHEME=https`).
    public var isSecure: Bool {
        if let https = environ["HTTPS"], !https.isEmpty, https.lowercased() != "off", https != "0" { return true }
        return environ["REQUEST_SCHEME"]?.lowercased() == "https"
    }

    /// The client address (`REMOTE_ADDR`).
    public var remoteAddress: String? { environ["REMOTE_ADDR"] }

    /// The body as UTF-8 text; `nil` if it is not valid UTF-8, or larger
    /// than `--body-buffer` (then it is in ``RequestBody/file``).
    public var bodyText: String? { (try? body.bytesForParsing()).flatMap { UTF8Text.string($0) } }

    static func queryPart(of uri: String?) -> String {
        guard let uri else { return "" }
        let utf8 = uri.utf8
        guard let question = utf8.firstIndex(of: UInt8(ascii: "?")) else { return "" }
        let query = utf8[utf8.index(after: question)...]
        let end = query.firstIndex(of: UInt8(ascii: "#")) ?? query.endIndex
        return String(Substring(query[..<end]))
    }

    /// The routed path of a request with these parameters (see ``path``).
    static func routedPath(uri: String?, scriptName: String?, pathInfo: String?) -> String {
        if let uri, !uri.isEmpty {
            let utf8 = uri.utf8
            var end = utf8.endIndex
            if let stop = utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { end = stop }
            var path = Substring(utf8[..<end])
            // Absolute-form request targets (RFC 9112 §3.2.2): drop scheme and authority.
            if path.utf8.first != UInt8(ascii: "/"), let scheme = path.firstRange(of: "://") {
                let afterAuthority = path[scheme.upperBound...]
                path = afterAuthority.utf8.firstIndex(of: UInt8(ascii: "/")).map { afterAuthority[$0...] } ?? "/"
            }
            return path.isEmpty ? "/" : (end == utf8.endIndex && path.utf8.count == utf8.count ? uri : String(path))
        }
        let joined = (scriptName ?? "") + (pathInfo ?? "")
        return joined.isEmpty ? "/" : joined
    }
}

@available(*, unavailable)
extension Request: Sendable {}

/// Whether a `Content-Type` value names `mediaType`, ignoring case and parameters.
func mediaTypeIs(_ contentType: String, _ mediaType: String) -> Bool {
    let essence = contentType.split(separator: ";", maxSplits: 1).first ?? ""
    var trimmed = essence[...]
    while trimmed.first == " " { trimmed = trimmed.dropFirst() }
    while trimmed.last == " " { trimmed = trimmed.dropLast() }
    return asciiCaseInsensitiveEquals(String(trimmed), mediaType)
}
