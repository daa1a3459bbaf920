import Testing
import GimletHTTP

@Suite struct UTF8TextValidation {
    @Test(arguments: [
        ([UInt8](), ""), (Array("plain ascii".utf8), "plain ascii"), (Array("grüße ✓ 𝄞".utf8), "grüße ✓ 𝄞"),
    ])
    func validTextIsKept(bytes: [UInt8], expected: String) {
        #expect(UTF8Text.string(bytes) == expected)
        #expect(UTF8Text.string(([0x41] + bytes + [0x42])[1...].dropLast()) == expected)
    }

    @Test(arguments: [
        [0x80], [0xC3], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x41, 0xFF, 0x41], [0xE2, 0x9C],
    ] as [[UInt8]])
    func invalidTextIsRefused(bytes: [UInt8]) {
        // Truncated, overlong, a surrogate, past U+10FFFF, a byte never in UTF-8.
        #expect(UTF8Text.string(bytes) == nil)
    }
}

@Suite struct ASCIIByteAppending {
    @Test(arguments: [0, 7, 10, 99, 100, 1234, 4_096, Int.max, -1, -305, Int.min])
    func decimalMatchesStringDescription(value: Int) {
        var bytes: [UInt8] = Array("x".utf8)
        bytes.appendDecimal(value)
        bytes.appendLineEnd()
        #expect(bytes == Array("x\(value)\r\n".utf8))
    }
}
