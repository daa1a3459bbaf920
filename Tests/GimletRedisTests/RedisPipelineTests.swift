import Testing
@testable import GimletRedis

@Suite struct RedisPipelineEncoding {
    func text(_ pipeline: RedisPipeline) -> String { String(decoding: pipeline.bytes, as: UTF8.self) }

    @Test func commandsAreRESPArraysOfBulkStrings() {
        var pipeline = RedisPipeline()
        pipeline.command("HGETALL", Array("gimlet:ab".utf8))
        #expect(text(pipeline) == "*2\r\n$7\r\nHGETALL\r\n$9\r\ngimlet:ab\r\n")
        #expect(pipeline.count == 1)

        let binary: [UInt8] = [0, 13, 10, 255]
        pipeline.begin("HSET", arguments: 3)
        pipeline.argument("k")
        pipeline.argument("é")
        pipeline.argument(binary)
        #expect(pipeline.count == 2)
        #expect(pipeline.isComplete)
        let expected = Array("*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$2\r\né\r\n$4\r\n".utf8) + binary + [13, 10]
        #expect(Array(pipeline.bytes.suffix(expected.count)) == expected)
    }

    @Test func lengthsOfManyDigits() {
        var pipeline = RedisPipeline()
        pipeline.command("SET", Array("k".utf8), [UInt8](repeating: 120, count: 1234))
        #expect(text(pipeline).hasPrefix("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1234\r\nxxx"))
        pipeline.begin("DEL", arguments: 10)
        for index in 0..<10 { pipeline.argument(String(index)) }
        #expect(text(pipeline).contains("*11\r\n$3\r\nDEL\r\n$1\r\n0\r\n"))
    }

    @Test func severalCommandsGoInOneTransaction() {
        var one = RedisPipeline()
        one.command("EXPIRE", Array("k".utf8), Array("60".utf8))
        let single = one.bytes
        one.wrapInTransaction()
        #expect(one.bytes == single)
        #expect(one.count == 1)

        var two = one
        two.command("DEL", Array("k".utf8))
        two.wrapInTransaction()
        #expect(two.count == 4)
        #expect(text(two) == "*1\r\n$5\r\nMULTI\r\n*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n60\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*1\r\n$4\r\nEXEC\r\n")
    }
}
