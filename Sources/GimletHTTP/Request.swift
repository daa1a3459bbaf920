import Logging

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
    public let environ: [String: String]
    /// The request body, at most the host's configured maximum.
    public let body: [UInt8]
    /// The request method (`REQUEST_METHOD`).
    public let method: HTTPMethod
    /// The path, percent-encoded, without the query string.
    public let path: String
    /// The raw query string without `?` (`QUERY_STRING`, else the query part of `REQUEST_URI`).
    public let queryString: String
    /// Parameters captured by the route (`:name` segments, `*` for a wildcard), percent-decoded.
    public internal(set) var parameters: [String: String] = [:]
    /// The logger for this request.
    public var logger: Logger
    /// Values that middleware attaches to the request (see ``RequestStorage``).
    public var storage = RequestStorage()

    /// Creates a request from a CGI environ and body.
    ///
    /// - Parameters:
    ///   - environ: the CGI parameters (`REQUEST_METHOD`, `REQUEST_URI`, `HTTP_*`, …).
    ///   - body: the request body.
    ///   - logger: the logger handlers should use.
    public init(environ: [String: String], body: [UInt8] = [], logger: Logger = Request.defaultLogger) {
        self.environ = environ
        self.body = body
        self.logger = logger
        self.method = HTTPMethod(environ["REQUEST_METHOD"] ?? "GET")
        self.queryString = environ["QUERY_STRING"] ?? Self.queryPart(of: environ["REQUEST_URI"])
        self.path = Self.routedPath(environ)
    }

    /// The logger used when none is given: swift-log's, labelled `gimlet`.
    public static let defaultLogger = Logger(label: "gimlet")

    /// The request headers, looked up in the environ.
    public var headers: RequestHeaders { RequestHeaders(environ: environ) }

    /// The decoded query string.
    public private(set) lazy var query: URLEncodedForm = URLEncodedForm(queryString)

    /// The decoded `application/x-www-form-urlencoded` body; empty for other content types.
    public private(set) lazy var form: URLEncodedForm = {
        guard let type = contentType, mediaTypeIs(type, "application/x-www-form-urlencoded") else {
            return URLEncodedForm()
        }
        return URLEncodedForm(bytes: body)
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

    /// The body as UTF-8 text, or `nil` if it is not valid UTF-8.
    public var bodyText: String? { String(validating: body, as: UTF8.self) }

    static func queryPart(of uri: String?) -> String {
        guard let uri, let question = uri.firstIndex(of: "?") else { return "" }
        let query = uri[uri.index(after: question)...]
        return String(query.firstIndex(of: "#").map { query[..<$0] } ?? query)
    }

    static func routedPath(_ environ: [String: String]) -> String {
        if let uri = environ["REQUEST_URI"], !uri.isEmpty {
            var path = uri[...]
            if let question = path.firstIndex(of: "?") { path = path[..<question] }
            if let fragment = path.firstIndex(of: "#") { path = path[..<fragment] }
            // Absolute-form request targets (RFC 9112 §3.2.2): drop scheme and authority.
            if !path.hasPrefix("/"), let schemeEnd = path.range(of: "://") {
                let afterAuthority = path[schemeEnd.upperBound...]
                path = afterAuthority.firstIndex(of: "/").map { afterAuthority[$0...] } ?? "/"
            }
            return path.isEmpty ? "/" : String(path)
        }
        let joined = (environ["SCRIPT_NAME"] ?? "") + (environ["PATH_INFO"] ?? "")
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
