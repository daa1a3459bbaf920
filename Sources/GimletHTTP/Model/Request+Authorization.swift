import Foundation

/// The credentials of an `Authorization` header, for APIs: `Basic`
/// (RFC 7617) and `Bearer` (RFC 6750).
///
/// ```swift
/// router.get("/api/me") { request in
///     guard case .bearer(let token)? = request.authorization, let user = tokens[token] else {
///         throw HTTPError(.unauthorized, headers: ["WWW-Authenticate": "Bearer"])
///     }
///     return .text(user)
/// }
/// ```
public enum Authorization: Sendable, Equatable {
    /// `Basic`: a user name (without `:`) and a password, decoded from base64 as UTF-8.
    case basic(user: String, password: String)
    /// `Bearer`: the token, as sent.
    case bearer(token: String)

    /// The longest header value read, in bytes; a longer one is no credentials.
    public static let maximumLength = 8192

    /// The credentials in `value`; `nil` when it is neither a well-formed
    /// `Basic` nor `Bearer` credential (another scheme, bad base64, text that
    /// is not UTF-8, a control character, a token with characters RFC 6750
    /// does not allow, a value over ``maximumLength``).
    public init?(headerValue value: String) {
        guard value.utf8.count <= Self.maximumLength else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return nil }
        let scheme = trimmed[..<space].lowercased()
        let credentials = trimmed[space...].drop { $0 == " " }
        guard !credentials.isEmpty, Self.isToken68(credentials) else { return nil }
        switch scheme {
        case "basic":
            guard let decoded = Data(base64Encoded: String(credentials)),
                  let text = String(data: decoded, encoding: .utf8),
                  !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
                  let colon = text.firstIndex(of: ":")
            else { return nil }
            self = .basic(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
        case "bearer":
            self = .bearer(token: String(credentials))
        default:
            return nil
        }
    }

    /// RFC 7235's token68: letters, digits, `-._~+/`, then `=` padding only.
    static func isToken68(_ text: Substring) -> Bool {
        let body = text.utf8.reversed().drop { $0 == UInt8(ascii: "=") }
        guard !body.isEmpty else { return false }
        return body.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
    }
}

extension Request {
    /// The request's `Authorization` credentials (``Authorization``): `nil`
    /// without the header, or when it is not a well-formed `Basic` or `Bearer`
    /// one, which an API answers `401` like a missing one.
    ///
    /// The web server must pass the header: nginx's `fastcgi_params` and
    /// `scgi_params` do; Apache's `mod_proxy_fcgi` drops it unless told
    /// (`CGIPassAuth On`, as the `deploy/apache` recipes do).
    public var authorization: Authorization? {
        headers["Authorization"].flatMap(Authorization.init(headerValue:))
    }
}
