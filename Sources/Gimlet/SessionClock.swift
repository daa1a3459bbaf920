import Foundation

/// Where sessions get the time: seconds since 1970.
///
/// Tests replace it (`ManualClock` in GimletTesting) to move time by hand.
public protocol SessionClock: Sendable {
    /// The current time in whole seconds since 1970-01-01T00:00:00Z.
    func now() -> Int64
}

/// The system's wall clock.
public struct SystemClock: SessionClock {
    /// The system clock.
    public init() {}

    /// Seconds since 1970, now.
    public func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
