/// A `Set-Cookie` response header (RFC 6265 §4.1), rendered only when every
/// part is safe to send.
///
/// ```swift
/// var cookie = SetCookie(name: "theme", value: "dark")
/// cookie.maxAge = 86_400
/// cookie.secure = request.isSecure
/// try response.setCookie(cookie)
/// // Set-Cookie: theme=dark; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax
/// ```
public struct SetCookie: Sendable, Equatable {
    /// The `SameSite` attribute.
    public enum SameSite: String, Sendable {
        /// Sent only on requests from the same site.
        case strict = "Strict"
        /// Also sent on top-level navigations from other sites (browsers' default).
        case lax = "Lax"
        /// Sent on every request, which browsers allow only with `Secure`.
        case none = "None"
    }

    /// The cookie name: an RFC 9110 token.
    public var name: String
    /// The value: RFC 6265 cookie-octets (no spaces, `"`, `,`, `;` or `\`).
    public var value: String
    /// Seconds until the browser drops the cookie; `0` or less deletes it.
    /// `nil` (with `expires` also `nil`) makes a browser-session cookie.
    public var maxAge: Int?
    /// An absolute expiry in seconds since 1970, for old clients that ignore `Max-Age`.
    public var expires: Int64?
    /// The `Path` attribute; `/` by default.
    public var path: String?
    /// The `Domain` attribute; host-only when `nil`.
    public var domain: String?
    /// Send only over HTTPS.
    public var secure: Bool
    /// Hide from JavaScript.
    public var httpOnly: Bool
    /// Cross-site sending policy; `None` requires `secure`.
    public var sameSite: SameSite?

    /// Creates a cookie with the safe defaults: `Path=/`, `HttpOnly`, `SameSite=Lax`.
    public init(
        name: String, value: String, maxAge: Int? = nil, expires: Int64? = nil,
        path: String? = "/", domain: String? = nil, secure: Bool = false,
        httpOnly: Bool = true, sameSite: SameSite? = .lax
    ) {
        self.name = name
        self.value = value
        self.maxAge = maxAge
        self.expires = expires
        self.path = path
        self.domain = domain
        self.secure = secure
        self.httpOnly = httpOnly
        self.sameSite = sameSite
    }

    /// A cookie that tells the browser to delete `name` at `path`/`domain`.
    public static func deletion(name: String, path: String? = "/", domain: String? = nil) -> SetCookie {
        SetCookie(name: name, value: "", maxAge: 0, expires: 0, path: path, domain: domain)
    }

    /// The header value, after checking that no part could inject another
    /// attribute or header.
    ///
    /// - Throws: ``CookieError`` naming the offending part.
    public func headerValue() throws(CookieError) -> String {
        guard isToken(name) else { throw CookieError(.invalidName, name) }
        guard Self.all(value, Self.isCookieOctet) else { throw CookieError(.invalidValue, name) }
        // One byte buffer: concatenating strings made a new string per attribute.
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count + value.utf8.count + 128)
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: "="))
        out.append(contentsOf: value.utf8)
        if let maxAge { Self.append("; Max-Age=", String(maxAge), to: &out) }
        if let expires { Self.append("; Expires=", HTTPDate.format(unixSeconds: expires), to: &out) }
        if let path {
            guard Self.all(path, Self.isAttributeValueByte) else { throw CookieError(.invalidPath, name) }
            Self.append("; Path=", path, to: &out)
        }
        if let domain {
            guard !domain.isEmpty, Self.all(domain, Self.isDomainByte) else {
                throw CookieError(.invalidDomain, name)
            }
            Self.append("; Domain=", domain, to: &out)
        }
        if secure { Self.append("; Secure", "", to: &out) }
        if httpOnly { Self.append("; HttpOnly", "", to: &out) }
        if let sameSite {
            guard sameSite != .none || secure else { throw CookieError(.sameSiteNoneWithoutSecure, name) }
            Self.append("; SameSite=", sameSite.rawValue, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ attribute: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: attribute.utf8)
        out.append(contentsOf: value.utf8)
    }

    private static func all(_ text: String, _ allowed: (UInt8) -> Bool) -> Bool {
        let bytes = text.utf8.span
        for index in bytes.indices where !allowed(bytes[index]) { return false }
        return true
    }

    static func isCookieOctet(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x21, 0x23...0x2B, 0x2D...0x3A, 0x3C...0x5B, 0x5D...0x7E: true
        default: false
        }
    }

    static func isAttributeValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: ";")
    }

    static func isDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."): true
        default: false
        }
    }
}

/// Why a ``SetCookie`` could not be rendered.
public struct CookieError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    public enum Kind: Sendable, Equatable {
        /// The name is not an HTTP token.
        case invalidName
        /// The value has a byte outside RFC 6265's cookie-octets.
        case invalidValue
        /// The path has a byte an attribute value cannot have (a control character or `;`).
        case invalidPath
        /// The domain is empty or has a byte other than letters, digits, `-` and `.`.
        case invalidDomain
        /// `SameSite=None` without `Secure`, which browsers reject.
        case sameSiteNoneWithoutSecure
    }

    /// What was wrong.
    public let kind: Kind
    /// The cookie's name, as given.
    public let cookieName: String

    init(_ kind: Kind, _ cookieName: String) {
        self.kind = kind
        self.cookieName = cookieName
    }

    public var description: String {
        let name = String(reflecting: cookieName)
        return switch kind {
        case .invalidName: "cookie name \(name) is not an RFC 9110 token"
        case .invalidValue: "value of cookie \(name) has characters outside RFC 6265 cookie-octets (encode it first)"
        case .invalidPath: "Path of cookie \(name) has a control character or ';'"
        case .invalidDomain: "Domain of cookie \(name) is not a host name"
        case .sameSiteNoneWithoutSecure: "cookie \(name) has SameSite=None without Secure; browsers reject it"
        }
    }
}
