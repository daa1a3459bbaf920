import GimletHTTP
import Logging
import Synchronization

/// What the session layer refused, for the operator: each kind is logged at
/// `warning` with `security_event=<kind>`, the request's method, path, client
/// address and id (`request_id`, from the request's logger), at most
/// ``SecurityEventLimiter/linesPerWindow`` lines per kind per minute per
/// process, so a flood of forged requests cannot flood the log.
enum SecurityEvent: String, CaseIterable, Sendable {
    /// An unsafe request without the session's CSRF token (or a wrong one).
    case csrfToken = "csrf_token"
    /// An unsafe request a browser marked `Sec-Fetch-Site: cross-site`.
    case crossSite = "cross_site"
    /// An unsafe request whose `Origin` is neither its own nor a public origin.
    case crossOrigin = "cross_origin"
    /// A session cookie that does not verify or decode (tampered, forged, or
    /// signed with a secret no longer listed).
    case rejectedCookie = "rejected_cookie"

    // protected by: the mutex; one limiter for the process.
    private static let limiter = Mutex(SecurityEventLimiter())

    /// Logs this event for `request`, unless its kind is over its rate.
    /// Text a client chose in `extra` must already be a ``word(_:)``.
    func log(_ message: String, request: Request, metadata extra: Logger.Metadata = [:]) {
        let decision = Self.limiter.withLock { $0.admit(self, now: .now) }
        guard decision.log else { return }
        var metadata: Logger.Metadata = [
            "security_event": "\(rawValue)", "method": "\(Self.word(request.method.rawValue))",
            "path": "\(Self.word(request.path))", "client": "\(Self.word(request.remoteAddress ?? "-"))",
        ]
        metadata.merge(extra) { _, new in new }
        if decision.suppressed > 0 { metadata["suppressed_before"] = "\(decision.suppressed)" }
        if decision.last {
            metadata["rate_limited"] = "the next ones of this kind are counted, not logged, until the minute is over"
        }
        request.logger.warning("\(message)", metadata: metadata)
    }
}

extension SecurityEvent {
    /// `text` as one word a log parser (fail2ban) cannot be fooled by:
    /// spaces, quotes, backslashes, `=` and anything unprintable as `\xHH`,
    /// so a client's header cannot forge a field such as `client=`.
    static func word(_ text: String) -> String {
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

/// How many lines of each ``SecurityEvent`` kind go to the log: the first
/// ``linesPerWindow`` of each minute; the others are counted, and the
/// count is on the next line logged.
struct SecurityEventLimiter {
    static let linesPerWindow = 10
    static let window: Duration = .seconds(60)

    private var windowStart: [SecurityEvent: ContinuousClock.Instant] = [:]
    private var logged: [SecurityEvent: Int] = [:]
    private var suppressed: [SecurityEvent: Int] = [:]

    /// Whether an event of `kind` at `now` is logged; if so, how many were
    /// left out before it, and whether it is the last one of its window.
    mutating func admit(_ kind: SecurityEvent, now: ContinuousClock.Instant)
        -> (log: Bool, suppressed: Int, last: Bool)
    {
        if let start = windowStart[kind], now - start < Self.window {
            if logged[kind, default: 0] >= Self.linesPerWindow {
                suppressed[kind, default: 0] += 1
                return (false, 0, false)
            }
        } else {
            windowStart[kind] = now
            logged[kind] = 0
        }
        logged[kind, default: 0] += 1
        let left = suppressed.removeValue(forKey: kind) ?? 0
        return (true, left, logged[kind] == Self.linesPerWindow)
    }
}
