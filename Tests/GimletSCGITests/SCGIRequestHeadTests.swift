import GimletHTTP
import Testing
@testable import GimletSCGI

@Suite struct SCGIHeadParsing {
    /// A well-formed request: netstring of NUL-separated pairs, then the body.
    static func request(_ pairs: [(String, String)], body: String = "") -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in pairs {
            block += Array(name.utf8) + [0] + Array(value.utf8) + [0]
        }
        return Array("\(block.count):".utf8) + block + Array(",".utf8) + Array(body.utf8)
    }

    static let good: [(String, String)] = [
        ("CONTENT_LENGTH", "5"), ("SCGI", "1"), ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo?x=1"),
        ("HTTP_COOKIE", "a=1"),
    ]

    @Test func parsesHeadAndFindsTheBody() throws {
        let input = Self.request(Self.good, body: "hello")
        guard case .complete(let head) = SCGIRequestHead.parse(input, maximumHeaderBytes: 4096) else {
            Issue.record("expected a complete head")
            return
        }
        #expect(head.contentLength == 5)
        #expect(head.environ["REQUEST_METHOD"] == "POST")
        #expect(head.environ["REQUEST_URI"] == "/echo?x=1")
        #expect(head.environ["HTTP_COOKIE"] == "a=1")
        #expect(head.environ["SCGI"] == "1")
        #expect(Array(input[head.headLength...]) == Array("hello".utf8))
        let request = Request(environ: head.environ)
        #expect(request.method == .post && request.path == "/echo" && request.query["x"] == "1")
    }

    @Test func everyPrefixNeedsMore() {
        let input = Self.request(Self.good)
        for end in 0..<input.count {
            guard case .needMore = SCGIRequestHead.parse(Array(input[..<end]), maximumHeaderBytes: 4096) else {
                Issue.record("prefix of \(end) bytes should need more")
                return
            }
        }
    }

    @Test(arguments: [
        ("no length", Array("abc:".utf8)),
        ("leading zero", Array("012:".utf8)),
        ("no colon", Array("12x".utf8)),
        ("missing comma", Array("3:a\u{0}b;".utf8)),
        ("over the limit", Array("99999999:".utf8)),
        ("content length not first", SCGIHeadParsing.request([("SCGI", "1"), ("CONTENT_LENGTH", "0")])),
        ("content length not numeric", SCGIHeadParsing.request([("CONTENT_LENGTH", "-1"), ("SCGI", "1")])),
        ("content length empty", SCGIHeadParsing.request([("CONTENT_LENGTH", ""), ("SCGI", "1")])),
        ("content length duplicated", SCGIHeadParsing.request([("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("CONTENT_LENGTH", "9")])),
        ("duplicate header", SCGIHeadParsing.request([("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("A", "1"), ("A", "2")])),
        ("no SCGI", SCGIHeadParsing.request([("CONTENT_LENGTH", "0")])),
        ("SCGI not 1", SCGIHeadParsing.request([("CONTENT_LENGTH", "0"), ("SCGI", "2")])),
        ("name without value", Array("15:CONTENT_LENGTH\u{0},".utf8)),
        ("empty block", Array("0:,".utf8)),
        ("block not NUL-terminated", Array("3:abc,".utf8)),
        ("empty name", SCGIHeadParsing.request([("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("", "x")])),
    ])
    func refusesMalformedHeads(what: String, input: [UInt8]) {
        guard case .invalid = SCGIRequestHead.parse(input, maximumHeaderBytes: 4096) else {
            Issue.record("accepted: \(what)")
            return
        }
    }

    /// nginx passes a header sent on several lines as several HTTP_ parameters.
    @Test func repeatedRequestHeadersAreAccepted() {
        let input = Self.request(Self.good + [("HTTP_COOKIE", "b=2")])
        guard case .complete(let head) = SCGIRequestHead.parse(input, maximumHeaderBytes: 4096) else {
            Issue.record("refused a repeated Cookie header")
            return
        }
        #expect(head.environ["HTTP_COOKIE"] == "a=1; b=2")
    }

    @Test func headerBlockOverTheLimit() {
        let input = Self.request(Self.good + [("HTTP_BIG", String(repeating: "x", count: 5000))])
        guard case .invalid(let reason) = SCGIRequestHead.parse(input, maximumHeaderBytes: 4096) else {
            Issue.record("a 5 KB block must be refused at 4 KB")
            return
        }
        #expect(reason.contains("larger than 4096"))
    }

    @Test func randomGarbageNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0...64, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if Bool.random(using: &generator) { bytes = Array("\(count):".utf8) + bytes }
            _ = SCGIRequestHead.parse(bytes, maximumHeaderBytes: 4096)
        }
    }
}
