/// A part of the app with work to do when the host starts serving, reloads
/// and stops: a middleware that holds a store, a cache with a sweeper, a
/// client with open connections.
///
/// The router collects these parts: every middleware added with `use` (in a
/// group too), and anything else given to ``Router/manage(_:)``. The host
/// calls the router, which calls them: `validate` and `reload` in the order
/// they were registered, `shutdown` the last registered first. Each method
/// does nothing by default.
///
/// ```swift
/// final class PriceCache: HostLifecycle {
///     func validate() throws { try checkTheFeedURL() }
///     func reload() throws { try rereadTheFeedURL() }   // on SIGHUP
///     func shutdown() { stopTheRefresher() }
/// }
/// router.manage(cache)
/// ```
public protocol HostLifecycle: Sendable {
    /// Checks the configuration before the first request is accepted.
    ///
    /// - Throws: an error that says what is wrong and how to fix it; the
    ///   host logs it and does not start serving.
    func validate() throws

    /// Re-reads what the part reads from files (a secret file after a
    /// rotation). The host calls it on `SIGHUP` when it serves in one
    /// process; under `--workers`, `SIGHUP` starts fresh workers instead.
    ///
    /// - Throws: an error that says what could not be read; what was in
    ///   use stays in use.
    func reload() throws

    /// Stops the part's background work (a backend's sweeper) and closes
    /// what it holds, once the last request has been answered. The host
    /// calls it once, when it stops serving.
    func shutdown()
}

extension HostLifecycle {
    public func validate() throws {}
    public func reload() throws {}
    public func shutdown() {}
}
