// The SCGI head parser: netstring length, NUL-separated header pairs,
// CONTENT_LENGTH first, SCGI=1. Any input gets an answer (complete, needs
// more, or invalid), never a crash; a complete head lies within the input.
import FuzzDriver
import GimletHTTP
import GimletSCGI
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    switch SCGIRequestHead.parse(bytes, maximumHeaderBytes: 4096) {
    case .complete(let head):
        guard head.headLength <= bytes.count, head.contentLength >= 0 else { fatalError("a head outside its input") }
        for (key, value) in head.environ { _ = key.utf8.count + value.utf8.count }
        _ = Request(environ: head.environ, body: Array(bytes[head.headLength...])).origin
    case .needMore, .invalid:
        break
    }
    return 0
}

exit(runFuzzer(testOneInput))
