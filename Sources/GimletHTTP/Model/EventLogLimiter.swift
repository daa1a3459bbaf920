/// Which events of a kind a client can cause (a forged cookie, a refused
/// connection) go to the log, so that nobody can flood the log, and one
/// client's flood cannot hide everyone else's events.
///
/// In each window (a minute), at most ``perClient`` lines per kind and
/// client, and at most ``perKind`` lines per kind in all; the events left
/// out are counted, and the count rides on the next line logged of that
/// kind. Every event is counted in ``totals``, logged or not. At most
/// ``maximumClients`` clients are followed at once: past that, the clients
/// whose window is over are forgotten, and an event of a new client while
/// the table is full of live windows is counted, not logged.
///
/// ```swift
/// var limiter = EventLogLimiter<String>()
/// let decision = limiter.admit("rejected_cookie", client: "203.0.113.9", now: .now)
/// if decision.log { logger.warning("…", metadata: ["suppressed_before": "\(decision.suppressed)"]) }
/// ```
package struct EventLogLimiter<Kind: Hashable & Sendable>: Sendable {
    /// What to do with one event.
    package struct Decision: Equatable, Sendable {
        /// Whether to log it.
        package var log: Bool
        /// Events of its kind left out of the log since the last line of that kind.
        package var suppressed: Int
        /// Whether it is the last line its client (or its kind) gets in this window.
        package var last: Bool
    }

    package let perClient: Int
    package let perKind: Int
    package let window: Duration
    package let maximumClients: Int

    private struct Window: Sendable {
        var start: ContinuousClock.Instant
        var logged = 0
    }

    private struct ClientKey: Hashable, Sendable {
        var kind: Kind
        var client: String
    }

    private var kinds: [Kind: Window] = [:]
    private var clients: [ClientKey: Window] = [:]
    private var suppressed: [Kind: Int] = [:]
    /// Every event admitted, per kind, since the process started.
    package private(set) var totals: [Kind: Int] = [:]

    /// A limiter of `perClient` lines per kind and client and `perKind`
    /// lines per kind in each `window`.
    package init(perClient: Int = 3, perKind: Int = 20, window: Duration = .seconds(60), maximumClients: Int = 4096) {
        self.perClient = perClient
        self.perKind = perKind
        self.window = window
        self.maximumClients = maximumClients
    }

    /// Counts an event of `kind` caused by `client` at `now` and says whether to log it.
    package mutating func admit(_ kind: Kind, client: String, now: ContinuousClock.Instant) -> Decision {
        totals[kind, default: 0] += 1
        var kindWindow = current(kinds[kind], now: now)
        let key = ClientKey(kind: kind, client: client)
        if clients[key] == nil, clients.count >= maximumClients {
            clients = clients.filter { now - $0.value.start < window }
        }
        guard clients[key] != nil || clients.count < maximumClients else { return leaveOut(kind) }
        var clientWindow = current(clients[key], now: now)
        guard clientWindow.logged < perClient, kindWindow.logged < perKind else {
            clients[key] = clientWindow
            kinds[kind] = kindWindow
            return leaveOut(kind)
        }
        clientWindow.logged += 1
        kindWindow.logged += 1
        clients[key] = clientWindow
        kinds[kind] = kindWindow
        let left = suppressed.removeValue(forKey: kind) ?? 0
        return Decision(log: true, suppressed: left, last: clientWindow.logged == perClient || kindWindow.logged == perKind)
    }

    private func current(_ window: Window?, now: ContinuousClock.Instant) -> Window {
        if let window, now - window.start < self.window { return window }
        return Window(start: now)
    }

    private mutating func leaveOut(_ kind: Kind) -> Decision {
        suppressed[kind, default: 0] += 1
        return Decision(log: false, suppressed: 0, last: false)
    }
}
