@testable import GimletHTTP
import Testing

/// The multipart parser on its own: parts, their heads and bytes, fed in
/// any pieces; malformed bodies and limits.
@Suite struct MultipartParsing {
    static let contentType = "multipart/form-data; boundary=----b0undary"

    static func body(_ parts: [(head: String, bytes: [UInt8])], boundary: String = "----b0undary", closing: Bool = true) -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            body += Array("--\(boundary)\r\n\(part.head)\r\n\r\n".utf8) + part.bytes + Array("\r\n".utf8)
        }
        if closing { body += Array("--\(boundary)--\r\n".utf8) }
        return body
    }

    /// What the parser reports, as text, feeding `body` in pieces of `piece` bytes.
    static func parse(_ body: [UInt8], piece: Int, limits: MultipartLimits = MultipartLimits(),
                      contentType: String = contentType) throws -> [String] {
        var parser = try MultipartParser(contentType: contentType, limits: limits)
        var events: [String] = []
        var bytes: [UInt8] = []
        var start = 0
        while start < body.count {
            let end = min(body.count, start + piece)
            try parser.feed(Array(body[start..<end])) { event in
                switch event {
                case .part(let head): events.append("part \(head.name) \(head.filename ?? "-") \(head.contentType ?? "-")")
                case .bytes(let slice): bytes += slice
                case .partEnd:
                    events.append("bytes \(String(decoding: bytes, as: UTF8.self))")
                    bytes = []
                }
            }
            start = end
        }
        try parser.finish()
        return events
    }

    static let form = body([
        (head: "Content-Disposition: form-data; name=\"title\"", bytes: Array("Hello, wörld".utf8)),
        (head: "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".txt\"\r\nContent-Type: text/plain",
         bytes: Array("line 1\r\n--not-the-boundary\r\n------b0undar".utf8)),
        (head: "content-disposition: form-data; name=empty; filename=\"\"", bytes: []),
    ])

    @Test(arguments: [1, 2, 3, 7, 64, 100_000])
    func partsArriveWholeWhateverThePieces(piece: Int) throws {
        #expect(try Self.parse(Self.form, piece: piece) == [
            "part title - -", "bytes Hello, wörld",
            "part file a \"b\".txt text/plain", "bytes line 1\r\n--not-the-boundary\r\n------b0undar",
            "part empty  -", "bytes ",
        ])
    }

    @Test func aPreambleAndAnEpilogueAreIgnoredAndTheBoundaryMayBeQuoted() throws {
        let body = Array("This is a preamble.\r\n".utf8) + Self.form + Array("epilogue".utf8)
        #expect(try Self.parse(body, piece: 5, contentType: "multipart/form-data; charset=utf-8; boundary=\"----b0undary\"").count == 6)
    }

    @Test(arguments: [
        ("text/plain", "expected a multipart/form-data body"),
        ("multipart/form-data", "the Content-Type has no valid boundary"),
        ("multipart/form-data; boundary=", "the Content-Type has no valid boundary"),
        ("multipart/form-data; boundary=" + String(repeating: "x", count: 71), "the Content-Type has no valid boundary"),
        ("multipart/form-data; boundary=a\u{1}b", "the Content-Type has no valid boundary"),
    ])
    func aContentTypeWithoutAUsableBoundaryIsRefused(contentType: String, reason: String) {
        let error = #expect(throws: MultipartError.self) { try MultipartParser(contentType: contentType, limits: MultipartLimits()) }
        #expect(error?.reason == reason)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let malformed: [([UInt8], String)] = [
        (bytes("no delimiter at all"), "no multipart delimiter in the body"),
        (bytes("------b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"), "the body ended inside a part (no closing delimiter)"),
        (bytes("------b0undary\r\nContent-Disposition: form-data; name=\"a\""), "the body ended inside a part (no closing delimiter)"),
        (bytes("------b0undaryXX\r\n"), "a multipart delimiter is followed by garbage"),
        (bytes("------b0undary\r\nno colon here\r\n\r\nx\r\n------b0undary--"), "a part's header line has no colon"),
        (bytes("------b0undary\r\nContent-Type: text/plain\r\n\r\nx\r\n------b0undary--"), "a part has no Content-Disposition"),
        (bytes("------b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n------b0undary--"), "a part has no name"),
        (bytes("------b0undary\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n------b0undary--"), "a part's Content-Disposition is not form-data"),
        (bytes("------b0undary\r\nContent-Disposition: form-data; name=\"") + [0xff] + bytes("\"\r\n\r\nx\r\n------b0undary--"), "a part's header is not UTF-8"),
    ]

    @Test(arguments: Self.malformed)
    func malformedBodiesSayWhy(body: [UInt8], reason: String) {
        for piece in [1, 4, 1000] {
            let error = #expect(throws: MultipartError.self) { try Self.parse(body, piece: piece) }
            let said: String? = error?.reason
            #expect(said == reason, "piece \(piece)")
            #expect(error?.kind == .malformed)
        }
    }

    @Test func limitsOnPartsAndHeads() throws {
        let many = Self.body((0..<5).map { (head: "Content-Disposition: form-data; name=\"f\($0)\"", bytes: [UInt8(ascii: "x")]) })
        let parts = #expect(throws: MultipartError.self) { try Self.parse(many, piece: 9, limits: MultipartLimits(maxParts: 4)) }
        #expect(parts?.kind == .tooLarge && parts?.reason == "more than 4 parts in the form")
        #expect(try Self.parse(many, piece: 9, limits: MultipartLimits(maxParts: 5)).count == 10)
        let longHead = Self.body([(head: "Content-Disposition: form-data; name=\"a\"\r\nX-Pad: " + String(repeating: "p", count: 300), bytes: [])])
        let head = #expect(throws: MultipartError.self) { try Self.parse(longHead, piece: 7, limits: MultipartLimits(maxHeaderBytes: 256)) }
        #expect(head?.kind == .tooLarge && head?.reason == "a part's headers are longer than 256 bytes")
        // A head that never ends is refused at the limit, not read forever.
        var endless = Array("------b0undary\r\nContent-Disposition: form-data; name=a\r\nX: ".utf8)
        endless += [UInt8](repeating: UInt8(ascii: "y"), count: 10_000)
        var parser = try MultipartParser(contentType: Self.contentType, limits: MultipartLimits(maxHeaderBytes: 1024))
        #expect(throws: MultipartError.self) { try parser.feed(endless) { _ in } }
    }

    @Test func errorsAnswerTheirStatus() {
        #expect(MultipartError(.notMultipart, "x").httpError.status == .unsupportedMediaType)
        #expect(MultipartError(.malformed, "x").httpError.status == .badRequest)
        #expect(MultipartError(.tooLarge, "x").httpError.status == .payloadTooLarge)
    }
}
