/// The answer of an access check: whether the web server in front may serve
/// a request for something the app does not serve itself (a static
/// directory, another upstream), judged by the app (its session, say).
///
/// A check is registered with `Router.authorizer(_:_:)` and asked two
/// ways, both tested through the real servers:
///
/// - **nginx `auth_request`**: a subrequest to the check's path (the
///   original URI in `GIMLET_ORIGINAL_URI`, see ``Request/accessedURI``).
///   Allowed is 200 with each variable as an `X-` header
///   (`GIMLET_USER` → `X-Gimlet-User`), which `auth_request_set` reads
///   (`$upstream_http_x_gimlet_user`); denied is the status (nginx accepts
///   only 401 and 403 there).
/// - **The FastCGI `AUTHORIZER` role** (Apache's `mod_authnz_fcgi`,
///   lighttpd): a request whose `FCGI_ROLE` is `AUTHORIZER` goes to the
///   check whatever its path (the path is the protected resource's).
///   Allowed is 200 with each variable as a `Variable-NAME` header, which
///   the server turns into the variable `NAME` of the protected request;
///   denied is the status with a short text, or a redirect, which the
///   server sends to the client.
public enum AccessDecision: Sendable, Equatable {
    /// Serve the request, with these variables for the protected part
    /// (names of letters, digits and `_`, such as `GIMLET_USER`).
    case allow([String: String])
    /// Refuse it with `status` (401 or 403 under nginx).
    case deny(HTTPStatus)
    /// Send the client elsewhere (a sign-in page), with a `302`. Only the
    /// FastCGI `AUTHORIZER` role passes a redirect on; nginx's
    /// `auth_request` answers 500 for one (deny with 401 there and let
    /// `error_page 401` redirect, as the recipe does).
    case redirect(to: String)

    /// Serve the request, with no variables.
    public static let allow = AccessDecision.allow([:])

    /// The response that says this decision to the server that asked
    /// (see the type's description), marked `no-store` except an allow in
    /// the `AUTHORIZER` role: Apache adds that answer's headers other than
    /// `Variable-` ones to the protected response (the session's
    /// `Set-Cookie` and `Vary` reach the client that way), and a
    /// `no-store` there would keep browsers from caching the file.
    ///
    /// - Parameter authorizerRole: whether the request came in the FastCGI `AUTHORIZER` role.
    func response(authorizerRole: Bool) -> Response {
        var response: Response
        switch self {
        case .allow(let variables):
            response = Response(status: .ok)
            for name in variables.keys.sorted() {
                guard let value = variables[name], Self.isVariableName(name), !value.utf8.contains(where: Self.breaksHeader) else {
                    continue
                }
                response.headers.add(authorizerRole ? "Variable-" + name : Self.headerName(of: name), value)
            }
            if authorizerRole { return response }
        case .deny(let status):
            response = .text(status == .unauthorized ? "sign in first" : "access denied", status: status)
        case .redirect(let location):
            response = .redirect(to: location)
        }
        response.headers["Cache-Control"] = "no-store"
        return response
    }

    /// Letters, digits and `_`, not empty.
    static func isVariableName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
        }
    }

    /// A control character a header value may not hold (CR, LF, NUL, …).
    private static func breaksHeader(_ byte: UInt8) -> Bool { byte < 0x20 && byte != 0x09 || byte == 0x7F }

    /// `GIMLET_USER` → `X-Gimlet-User`.
    static func headerName(of name: String) -> String {
        "X-" + name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }.joined(separator: "-")
    }
}

extension Request {
    /// In an access check, the URI the client asked for: nginx's recipe
    /// passes it as `GIMLET_ORIGINAL_URI` (`$request_uri`); in the FastCGI
    /// `AUTHORIZER` role it is the request's own `REQUEST_URI`.
    public var accessedURI: String {
        environ["GIMLET_ORIGINAL_URI"] ?? environ["REQUEST_URI"] ?? path
    }
}
