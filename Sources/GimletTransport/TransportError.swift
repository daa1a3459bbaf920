@_spi(GimletInlined) import GimletSystem

/// A transport failure: configuration, socket or protocol library.
///
/// Thrown before the first request is accepted (an address that cannot be
/// parsed or bound, a missing socket), with a message that says how to fix it.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in words that say how to fix it.
    public let message: String
    /// The `errno` of the failing system call, if one failed.
    public let errno: Int32?
    /// The failing system call (`bind`, `setsockopt(SO_RCVTIMEO)`), if one failed.
    public let call: String?

    package init(_ message: String, errno: Int32? = nil) {
        self.message = message
        self.errno = errno
        call = nil
    }

    /// `message`, caused by the failed system call `cause`.
    package init(_ message: String, _ cause: SystemCallError) {
        self.message = message
        errno = cause.errno
        call = cause.call
    }

    /// The message, then the system's reason and errno, then the call, when a call failed.
    public var description: String {
        guard let errno else { return message }
        let call = call.map { " (\($0))" } ?? ""
        return "\(message): \(systemErrorDescription(errno)) (errno \(errno))\(call)"
    }
}
