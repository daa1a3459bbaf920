import Logging
import Synchronization

/// What Gimlet refused or noticed that a client can cause at will, for the
/// operator (and fail2ban): each kind is logged at `warning` with
/// `security_event=<kind>` and the client's address, through
/// ``EventLogLimiter``: at most 3 lines a minute per kind and client and 20
/// per kind, so neither a flood nor one noisy client hides the others.
/// Every event is counted (``totals``), logged or not; the status page
/// shows the counts.
package enum SecurityEvent: String, CaseIterable, Sendable {
    /// An unsafe request without the session's CSRF token (or a wrong one).
    case csrfToken = "csrf_token"
    /// An unsafe request a browser marked `Sec-Fetch-Site: cross-site`.
    case crossSite = "cross_site"
    /// An unsafe request whose `Origin` is neither its own nor a public origin.
    case crossOrigin = "cross_origin"
    /// A session cookie that does not verify or decode (tampered, forged, or
    /// signed with a secret no longer listed).
    case rejectedCookie = "rejected_cookie"
    /// A request whose session changed under it and that answered 409: not
    /// an attack, but one a client can repeat at will.
    case sessionConflict = "session_conflict"
    /// A sign-in attempt past the sign-in throttle's limits (answered 429).
    case signInThrottled = "sign_in_throttled"
    /// A TCP connection from a peer not in the allowed clients.
    case refusedConnection = "refused_connection"
    /// A request that did not arrive within the read timeout.
    case readTimeout = "read_timeout"

    // protected by: the mutex; one limiter for the process.
    private static let limiter = Mutex(EventLogLimiter<SecurityEvent>())

    /// Events of each kind since the process started, logged or not.
    package static var totals: [SecurityEvent: Int] { limiter.withLock { $0.totals } }

    /// Logs this event for `request`, unless its kind or its client is over
    /// its rate. Text a client chose in `extra` must already be a ``word(_:)``.
    package func log(_ message: String, request: Request, metadata extra: Logger.Metadata = [:]) {
        var metadata: Logger.Metadata = [
            "method": "\(Self.word(request.method.rawValue))", "path": "\(Self.word(request.path))",
        ]
        metadata.merge(extra) { _, new in new }
        log(message, client: request.remoteAddress ?? "-", logger: request.logger, metadata: metadata)
    }

    /// Logs this event, caused by `client` (an address), to `logger`, unless
    /// its kind or its client is over its rate.
    package func log(_ message: String, client: String, logger: Logger, metadata extra: Logger.Metadata = [:]) {
        let decision = Self.limiter.withLock { $0.admit(self, client: client, now: .now) }
        guard decision.log else { return }
        var metadata: Logger.Metadata = ["security_event": "\(rawValue)", "client": "\(Self.word(client))"]
        metadata.merge(extra) { _, new in new }
        if decision.suppressed > 0 { metadata["suppressed_before"] = "\(decision.suppressed)" }
        if decision.last {
            metadata["rate_limited"] = "the next ones of this kind from this client are counted, not logged, until the minute is over"
        }
        logger.warning("\(message)", metadata: metadata)
    }

    /// `text` as one word a log parser (fail2ban) cannot be fooled by:
    /// spaces, quotes, backslashes, `=` and anything unprintable as `\xHH`,
    /// so a client's header cannot forge a field such as `client=`.
    package static func word(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte != UInt8(ascii: "=") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "\\x" + String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
            }
        }
        return out
    }
}
