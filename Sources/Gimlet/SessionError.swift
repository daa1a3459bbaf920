/// A session operation that cannot be done.
public struct SessionError: Error, Sendable, CustomStringConvertible, Equatable {
    private enum Kind: Equatable {
        case noBackend
        case backendUnavailable(SessionBackendError)
        case cookieTooLarge(cookie: String, bytes: Int)
        case notEncodable(key: String, reason: String)
        case usedOutsideItsRequest
    }

    private let kind: Kind

    /// Server-side storage was asked for, but no backend is configured.
    public static let noBackend = SessionError(kind: .noBackend)

    /// The backend could not load or store session data.
    public static func backendUnavailable(_ error: SessionBackendError) -> SessionError {
        SessionError(kind: .backendUnavailable(error))
    }

    /// The client-side data would make a cookie larger than browsers keep.
    public static func cookieTooLarge(cookie: String, bytes: Int) -> SessionError {
        SessionError(kind: .cookieTooLarge(cookie: cookie, bytes: bytes))
    }

    /// A ``SharedSession`` was used after its request ended, or was taken
    /// outside the request's async code.
    public static let usedOutsideItsRequest = SessionError(kind: .usedOutsideItsRequest)

    static func notEncodable(key: String, reason: String) -> SessionError {
        SessionError(kind: .notEncodable(key: key, reason: reason))
    }

    /// Whether this is a backend failure (the middleware answers 503).
    public var isBackendFailure: Bool { backendError != nil }

    /// The backend's error, as the backend threw it, when this is a backend failure.
    public var backendError: SessionBackendError? {
        if case .backendUnavailable(let error) = kind { error } else { nil }
    }

    public var description: String {
        switch kind {
        case .noBackend:
            "clientside: false needs a session backend, and none is configured"
        case .backendUnavailable(let error):
            error.description
        case .cookieTooLarge(let cookie, let bytes):
            "session cookie \(cookie) would be \(bytes) bytes, over the 4096 browsers keep: store large values server-side (clientside: false)"
        case .notEncodable(let key, let reason):
            "session value for \(String(reflecting: key)) cannot be stored: \(reason)"
        case .usedOutsideItsRequest:
            "a SharedSession was used after its request ended (or taken outside the request's async code): take request.session.shared in the handler and finish with it before the handler returns"
        }
    }
}
