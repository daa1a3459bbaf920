/// An error a handler throws to answer with a specific status.
///
/// The message becomes the `text/plain` body, so it must be fit for the
/// client to read. Any other error a handler throws becomes a logged
/// `500 Internal Server Error` whose body reveals nothing internal.
///
/// ```swift
/// router.get("/items/:id") { request in
///     guard let item = store[request.parameters["id"] ?? ""] else {
///         throw HTTPError(.notFound, "no such item")
///     }
///     return .text(item)
/// }
/// ```
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// The status of the response.
    public var status: HTTPStatus
    /// The body of the response; the status's reason phrase when `nil`.
    public var message: String?
    /// Extra headers for the response (for example `Allow` or `WWW-Authenticate`).
    public var headers: HTTPHeaders

    /// Creates an error that answers with `status` and `message`.
    public init(_ status: HTTPStatus, _ message: String? = nil, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status)" + (message.map { ": \($0)" } ?? "") }

    /// The response this error stands for.
    public var response: Response {
        var response = Response.text(message ?? status.reasonPhrase, status: status)
        for (name, value) in headers { response.headers.add(name, value) }
        return response
    }
}
