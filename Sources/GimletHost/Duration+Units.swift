/// The units the scoreboard, the logs and the supervisor read durations in.
extension Duration {
    /// Whole microseconds, never negative.
    var microseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }

    /// Milliseconds with a tenth, for log lines.
    var milliseconds: String {
        let micros = microseconds
        return "\(micros / 1000).\(micros % 1000 / 100)"
    }

    /// In seconds, as a Double.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
