/// Why a request's async code was cancelled (see ``Request/cancellation``).
public enum RequestCancellation: Sendable, Equatable, CustomStringConvertible {
    /// The web server closed the connection or aborted the request, as
    /// nginx does when its client goes away.
    case connectionClosed
    /// The request's deadline passed.
    case deadlinePassed

    /// The answer a cancelled request gets, whatever its handler returned:
    /// `499` (nginx's code for a client that went away; nobody reads it) or
    /// `504 Gateway Timeout`.
    public var status: HTTPStatus {
        switch self {
        case .connectionClosed: HTTPStatus(code: 499, reasonPhrase: "Client Closed Request")
        case .deadlinePassed: .gatewayTimeout
        }
    }

    public var description: String {
        switch self {
        case .connectionClosed: "the web server closed the connection"
        case .deadlinePassed: "the request's deadline passed"
        }
    }
}

/// A connection the worker thread watches while a request's async code
/// waits, to cancel it when the web server gives up on the request.
package struct ConnectionWatch: Sendable {
    /// The connection's descriptor; it is only peeked at, never read.
    package var descriptor: Int32
    /// FastCGI: the record type (`FCGI_ABORT_REQUEST`, 2) that, seen next on
    /// the connection, aborts the request. Other input stops the watch.
    package var abortRecordType: UInt8?

    package init(descriptor: Int32, abortRecordType: UInt8? = nil) {
        self.descriptor = descriptor
        self.abortRecordType = abortRecordType
    }
}
