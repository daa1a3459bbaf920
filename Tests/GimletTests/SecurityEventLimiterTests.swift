import Testing
@testable import Gimlet

/// Security events are logged at a rate an operator can live with.
@Suite struct SecurityEventLimiterTests {
    @Test func tenLinesPerKindPerMinuteThenACountOnTheNextLine() {
        var limiter = SecurityEventLimiter()
        let start = ContinuousClock.now
        let first = (0..<25).map { limiter.admit(.rejectedCookie, now: start + .milliseconds($0)) }
        #expect(first.filter(\.log).count == 10)
        #expect(first.prefix(10).allSatisfy { $0.log })
        #expect(first[9].last && !first[8].last, "the tenth line says the next ones are counted")
        // Another kind has its own allowance.
        #expect(limiter.admit(.csrfToken, now: start + .seconds(1)).log)
        // A minute later, lines come again, the first with the count left out.
        let later = limiter.admit(.rejectedCookie, now: start + .seconds(61))
        #expect(later.log && later.suppressed == 15)
        #expect(limiter.admit(.rejectedCookie, now: start + .seconds(62)).suppressed == 0)
    }

    /// A client's header cannot add a field to the line.
    @Test func clientTextIsOneWord() {
        #expect(SecurityEvent.word("https://evil.example client=10.0.0.1") == #"https://evil.example\x20client\x3d10.0.0.1"#)
        #expect(SecurityEvent.word("/notes/7") == "/notes/7")
    }
}
