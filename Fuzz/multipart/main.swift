// The multipart/form-data parser, fed in pieces: the first byte of the
// input sets the piece size, the rest is the body (boundary "b0undary").
// Any input ends in parts or a MultipartError, never a crash or a hang;
// events come in order (a head, its bytes, its end) and the bytes reported
// are never more than were fed.
import FuzzDriver
import GimletHTTP
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = fuzzBytes(data, size)
    guard let first = input.first else { return 0 }
    let piece = Int(first) + 1
    let body = Array(input.dropFirst())
    let limits = MultipartLimits(maxParts: 20, maxHeaderBytes: 512)
    guard var parser = try? MultipartParser(contentType: "multipart/form-data; boundary=b0undary", limits: limits) else {
        fatalError("a valid content type was refused")
    }
    var inPart = false
    var reported = 0
    do {
        var start = 0
        while start < body.count {
            let end = min(body.count, start + piece)
            try parser.feed(Array(body[start..<end])) { event in
                switch event {
                case .part(let head):
                    guard !inPart else { fatalError("a part began inside a part") }
                    _ = head.name.utf8.count + (head.filename?.utf8.count ?? 0)
                    inPart = true
                case .bytes(let bytes):
                    guard inPart else { fatalError("bytes outside a part") }
                    reported += bytes.count
                case .partEnd:
                    guard inPart else { fatalError("a part ended that had not begun") }
                    inPart = false
                }
            }
            start = end
        }
        try parser.finish()
        guard !inPart else { fatalError("finished inside a part") }
    } catch {
        _ = "\(error)"
    }
    guard reported <= body.count else { fatalError("more bytes reported than fed") }
    return 0
}

exit(runFuzzer(testOneInput))
