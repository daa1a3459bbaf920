/// An HTTP response: status, ordered headers and body.
///
/// ```swift
/// router.get("/") { _ in .text("hello") }
/// router.get("/old") { _ in .redirect(to: "/new", status: .movedPermanently) }
/// router.get("/page") { _ in .html("<h1>hi</h1>") }
/// ```
public struct Response: Sendable, Equatable {
    /// The status.
    public var status: HTTPStatus
    /// The headers, in the order they will be sent.
    public var headers: HTTPHeaders
    /// The body bytes.
    public var body: [UInt8]
    /// A file region sent as the body instead of ``body``, by the host, in
    /// bounded memory (``FileDownloads`` makes these; its
    /// `Content-Length` is set with it).
    public var file: ResponseFile?
    /// A body written while it is produced, by a task the host runs after
    /// the headers are sent, the connection watched rather than a worker
    /// thread held (``Response/stream(status:contentType:_:)``,
    /// ``Response/events(retry:heartbeat:_:)``).
    public var stream: ResponseStream?

    /// Creates a response.
    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// A `text/html; charset=utf-8` response.
    public static func html(_ html: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: Array(html.utf8))
    }

    /// A response with the given bytes and content type.
    public static func bytes(_ body: [UInt8], contentType: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": contentType], body: body)
    }

    /// A redirect to `location` (`302 Found` unless told otherwise).
    public static func redirect(to location: String, status: HTTPStatus = .found) -> Response {
        Response(status: status, headers: ["Location": location])
    }

    /// Appends a `Set-Cookie` header, keeping any earlier ones.
    ///
    /// - Throws: ``CookieError`` if the cookie could inject attributes or headers.
    public mutating func setCookie(_ cookie: SetCookie) throws(CookieError) {
        headers.add("Set-Cookie", try cookie.headerValue())
    }
}
