import GimletHTTP

extension Session {
    static let csrfKey = "_csrft_"

    /// The session's CSRF token (40 hex digits), made on first use.
    ///
    /// Put it in every form as `csrf_token` (or send it as `X-CSRF-Token`) and
    /// check unsafe requests with ``verifyCSRF(_:field:header:)``.
    public func csrfToken() throws -> String {
        if let token = try get(Self.csrfKey)?.stringValue { return token }
        return newCSRFToken()
    }

    /// Replaces the CSRF token with a new one and returns it.
    @discardableResult
    public func newCSRFToken() -> String {
        let token = Hex.encode(Crypto.randomBytes(20))
        self[Self.csrfKey] = .string(token)
        return token
    }

    /// Whether `candidate` equals the session's token, compared in constant time.
    public func isValidCSRFToken(_ candidate: String) throws -> Bool {
        guard let token = try get(Self.csrfKey)?.stringValue else { return false }
        return Crypto.constantTimeEquals(Array(token.utf8), Array(candidate.utf8))
    }

    /// Checks a request against cross-site request forgery: for unsafe methods,
    /// a cross-site `Sec-Fetch-Site` is refused, an `Origin` must be the
    /// request's own (`Request.origin`: scheme, host and port as
    /// the web server passed them) or one of the configured
    /// ``SessionConfiguration/publicOrigins``, and the `csrf_token` form field
    /// (of a URL-encoded or a multipart form), or the `X-CSRF-Token` header,
    /// must match the session's token. A multipart form is read for it (its
    /// files spooled) and kept: the handler's `request.multipartForm()` gets it.
    ///
    /// ```swift
    /// router.post("/transfer") { request in
    ///     try request.session.verifyCSRF(request)
    ///     …
    /// }
    /// ```
    ///
    /// - Throws: `HTTPError` 403 when the check fails; what reading a
    ///   multipart form throws (400, 413 for a malformed or oversized one).
    public func verifyCSRF(_ request: Request, field: String = "csrf_token", header: String = "X-CSRF-Token") throws {
        guard !request.method.isSafe else { return }
        if request.headers["Sec-Fetch-Site"]?.lowercased() == "cross-site" {
            SecurityEvent.crossSite.log("cross-site request refused (Sec-Fetch-Site); answered 403", request: request)
            throw HTTPError(.forbidden, "cross-site request refused")
        }
        if let sent = request.headers["Origin"], sent != "null" {
            guard let origin = HTTPOrigin(sent),
                  origin == request.origin || context.configuration.publicOrigins.contains(origin)
            else {
                SecurityEvent.crossOrigin.log("cross-origin request refused; answered 403", request: request, metadata: [
                    "origin": "\(SecurityEvent.word(sent))", "own_origin": "\(request.origin?.description ?? "unknown")",
                ])
                throw HTTPError(.forbidden, "cross-origin request refused")
            }
        }
        // A file upload's form is multipart: its token is one of its text fields
        // (read here, and kept for the handler's multipartForm()).
        let fromMultipart = request.isMultipartForm ? try request.multipartForm()[field] : nil
        let candidate = request.form[field] ?? fromMultipart ?? request.headers[header] ?? ""
        guard try isValidCSRFToken(candidate) else {
            SecurityEvent.csrfToken.log("CSRF token missing or wrong; answered 403", request: request,
                                        metadata: ["token_sent": "\(!candidate.isEmpty)"])
            throw HTTPError(.forbidden, "missing or wrong CSRF token")
        }
    }
}
