/// What a failed exchange says about the connection it ran on: the one
/// decision each backend makes for ``Pool/exchange(usable:_:fault:)``.
package enum ConnectionFault: Sendable, Equatable {
    /// The connection works (the store refused the request, or the caller's
    /// own check failed): it goes back to the pool.
    case sound
    /// The connection broke and is dropped. With `andOlder`, every
    /// connection opened before it goes too (what broke it, a restarted
    /// server or an idle timeout, broke them as well). With `retry`, the
    /// exchange runs again on another connection: only when the request
    /// cannot have been applied (nothing was sent, or a replica refused it).
    case broken(andOlder: Bool, retry: Bool)
}

extension Pool {
    /// Runs `body` on a pooled connection, by the policy every backend
    /// shares: take a connection; drop a reused one that `usable` finds
    /// dead (with every older one) and take another, so no request pays for
    /// it; run `body`; give the connection back, or on an error let `fault`
    /// say whether it broke, whether older ones go with it, and whether the
    /// exchange is tried again.
    ///
    /// ```swift
    /// let rows = try connections.exchange(usable: { $0.isUsable }) { connection in
    ///     try connection.run(statement)
    /// } fault: { error, reused in
    ///     guard let error = error as? StoreError, error.connectionLost else { return .sound }
    ///     return .broken(andOlder: reused && !error.sent, retry: reused && !error.sent)
    /// }
    /// ```
    ///
    /// A retry is the backend's promise that the request did not run: the
    /// loop ends because each retry drops at least the failed connection, and
    /// a backend retries a fresh connection's failure at most once.
    ///
    /// - Parameters:
    ///   - usable: a check of a reused connection that makes no round trip.
    ///   - body: the exchange.
    ///   - fault: what `body`'s error means for the connection; `reused`
    ///     says whether it had waited idle in the pool.
    /// - Throws: `body`'s error, or `take()`'s (``PoolExhausted``, or the
    ///   error of making a connection); the backend turns them into its own.
    package func exchange<T>(usable: (Member) -> Bool = { _ in true }, _ body: (Member) throws -> T,
                             fault: (any Error, _ reused: Bool) -> ConnectionFault) throws -> T {
        while true {
            let lease = try take()
            if lease.reused, !usable(lease.member) {
                discard(lease, andOlder: true)
                continue
            }
            do {
                let result = try body(lease.member)
                giveBack(lease)
                return result
            } catch {
                switch fault(error, lease.reused) {
                case .sound:
                    giveBack(lease)
                case .broken(let andOlder, let retry):
                    discard(lease, andOlder: andOlder)
                    if retry { continue }
                }
                throw error
            }
        }
    }
}
