// The whole request path in process: a CGI environ (KEY=VALUE lines), an
// empty line, then the body, through the router, the session middleware
// (memory backend) and session-lab's routes, plus a JSON route; the CGI
// response bytes must always come out, never a crash. The input as text is
// also parsed as an Authorization header and as a stored password hash.
import FuzzDriver
import Gimlet
import GimletHTTP
import Glibc
import Logging
import SessionLabApp

struct Note: Decodable { var text: String; var tags: [String]?; var count: Int? }

let router: Router = {
    do {
        var router = try SessionLabApp.router(SessionConfiguration(secrets: ["fuzz-secret-0123456789abcdef"], backend: MemoryBackend()))
        router.post("/json") { request in
            let note = try request.decodeJSON(Note.self)
            return .text(note.text)
        }
        return router
    } catch {
        fatalError("fuzz router: \(error)")
    }
}()
let quiet = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzBytes(data, size)
    var environ: [String: String] = ["REQUEST_METHOD": "GET", "REQUEST_URI": "/"]
    var body: [UInt8] = []
    var start = 0
    var index = 0
    while index < bytes.count {
        if bytes[index] == 0x0A {
            if index == start {
                body = Array(bytes[(index + 1)...])
                break
            }
            let line = String(decoding: bytes[start..<index], as: UTF8.self)
            if let equals = line.firstIndex(of: "=") {
                environ[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            start = index + 1
        }
        index += 1
    }
    // Credentials and stored password hashes, parsed on their own (no hashing).
    let text = String(decoding: bytes, as: UTF8.self)
    _ = Authorization(headerValue: text)
    _ = PasswordHasher().needsRehash(text)
    // The password routes spend tens of milliseconds per request on purpose:
    // their input is the hash string, parsed just above.
    if environ["REQUEST_URI"]?.hasPrefix("/password/") == true { return 0 }
    let output = CGIExchange.respond(environ: CGIEnvironment(environ), body: body, responder: router, logger: quiet)
    guard output.starts(with: Array("Status: ".utf8)) else { fatalError("a response without a Status line") }
    return 0
}

exit(runFuzzer(testOneInput))
