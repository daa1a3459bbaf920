import GimletHTTP
import Testing

/// Security events are logged at a rate an operator can live with, and one
/// client's flood hides nobody else's.
@Suite struct SecurityEventLimiterTests {
    @Test func threeLinesPerClientTwentyPerKindThenACountOnTheNextLine() {
        var limiter = EventLogLimiter<SecurityEvent>()
        let start = ContinuousClock.now
        let flood = (0..<25).map { limiter.admit(.rejectedCookie, client: "10.0.0.1", now: start + .milliseconds($0)) }
        #expect(flood.filter(\.log).count == 3 && flood.prefix(3).allSatisfy(\.log))
        #expect(flood[2].last && !flood[1].last, "the third line says the next ones are counted")
        // Another client is logged all the same, with the count left out before it.
        let other = limiter.admit(.rejectedCookie, client: "10.0.0.2", now: start + .seconds(1))
        #expect(other.log && other.suppressed == 22)
        // Another kind has its own allowance.
        #expect(limiter.admit(.csrfToken, client: "10.0.0.1", now: start + .seconds(1)).log)
        // Twenty clients of one kind fill the kind's minute.
        let many = (3..<30).map { limiter.admit(.rejectedCookie, client: "10.0.0.\($0)", now: start + .seconds(2)) }
        #expect(many.filter(\.log).count == 20 - 4, "the kind had logged four")
        // A minute later, lines come again.
        #expect(limiter.admit(.rejectedCookie, client: "10.0.0.1", now: start + .seconds(61)).log)
        #expect(limiter.totals[.rejectedCookie] == 25 + 1 + 27 + 1)
    }

    /// However many clients, the limiter follows a bounded number of them.
    @Test func theClientTableIsBounded() {
        var limiter = EventLogLimiter<SecurityEvent>(perClient: 1, perKind: 1_000_000, maximumClients: 100)
        let start = ContinuousClock.now
        let logged = (0..<1000).filter { limiter.admit(.refusedConnection, client: "c\($0)", now: start).log }.count
        #expect(logged == 100, "past the bound, new clients are counted, not logged, while their windows last")
        #expect(limiter.admit(.refusedConnection, client: "late", now: start + .seconds(61)).log, "expired windows make room")
    }

    /// A client's header cannot add a field to the line.
    @Test func clientTextIsOneWord() {
        #expect(SecurityEvent.word("https://evil.example client=10.0.0.1") == #"https://evil.example\x20client\x3d10.0.0.1"#)
        #expect(SecurityEvent.word("/notes/7") == "/notes/7")
    }
}
