/// An HTTP request method, as it arrives in the CGI `REQUEST_METHOD`.
///
/// Methods are case-sensitive (RFC 9110 §9.1); the common ones are constants.
///
/// ```swift
/// router.on(.patch, "/items/:id") { request in .text("patched") }
/// ```
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The method token, for example `GET`.
    public let rawValue: String

    /// Creates a method from its token.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a method from its token.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// `GET`.
    public static let get = HTTPMethod("GET")
    /// `HEAD`.
    public static let head = HTTPMethod("HEAD")
    /// `POST`.
    public static let post = HTTPMethod("POST")
    /// `PUT`.
    public static let put = HTTPMethod("PUT")
    /// `PATCH`.
    public static let patch = HTTPMethod("PATCH")
    /// `DELETE`.
    public static let delete = HTTPMethod("DELETE")
    /// `OPTIONS`.
    public static let options = HTTPMethod("OPTIONS")

    /// Whether the method is safe (RFC 9110 §9.2.1): it does not ask the server to change anything.
    public var isSafe: Bool {
        self == .get || self == .head || self == .options || rawValue == "TRACE"
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2): the safe methods,
    /// `PUT` and `DELETE`. Clients may repeat such a request by themselves.
    public var isIdempotent: Bool { isSafe || self == .put || self == .delete }

    public var description: String { rawValue }
}
