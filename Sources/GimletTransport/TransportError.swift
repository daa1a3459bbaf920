/// A transport failure: configuration, socket or protocol library.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in words that say how to fix it.
    public let message: String
    /// The `errno` of the failing system call, if one failed.
    public let errno: Int32?

    public init(_ message: String, errno: Int32? = nil) {
        self.message = message
        self.errno = errno
    }

    public var description: String {
        guard let errno else { return message }
        return "\(message): \(systemErrorDescription(errno)) (errno \(errno))"
    }
}
