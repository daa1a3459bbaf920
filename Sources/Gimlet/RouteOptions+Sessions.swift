import GimletHTTP

/// How the session middleware may treat a route's handler.
///
/// When a concurrent request of the same session changed a server-side key
/// that this request read and then wrote, the session middleware stores
/// nothing and either runs the handler again on the stored data or answers
/// `409 Conflict`. It re-runs handlers of idempotent methods (`GET`, `HEAD`,
/// `OPTIONS`, `PUT`, `DELETE`: clients may repeat those by themselves anyway)
/// and answers 409 for the others, unless the route says otherwise:
///
/// ```swift
/// router.post("/cart/add", options: .rerunOnSessionConflict) { request in
///     request.session["cart"]?.append(.string(request.form["item"] ?? ""))
///     return .text("added")
/// }
/// router.get("/confirm", options: .neverRerun) { request in … }   // sends a mail
/// ```
extension RouteOptions {
    /// Re-run the handler on a session conflict whatever the method: its
    /// effects outside the session are none, or may happen twice.
    public static let rerunOnSessionConflict = RouteOptions(rawValue: 1 << 0)

    /// Never re-run the handler, even for an idempotent method: it has
    /// effects outside the session (a mail, a payment) that must not repeat.
    /// A conflict answers 409.
    public static let neverRerun = RouteOptions(rawValue: 1 << 1)
}
