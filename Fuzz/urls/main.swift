// The parsers of what operators type: backend URLs (sqlite:, redis://,
// redis+unix://, redis+sentinel://, postgresql://) and their redaction for logs, listen addresses,
// allow-lists of web servers, origins. Any text gets a value or a clear error, never a crash.
import FuzzDriver
import Gimlet
import GimletBackendSupport
import GimletHTTP
import GimletPostgreSQL
import GimletRedis
import GimletSQLite
import GimletTransport
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: fuzzBytes(data, size), as: UTF8.self)
    _ = try? SQLiteSessionBackend.Configuration(url: text)
    _ = try? RedisSessionBackend.Configuration(url: text)
    _ = try? PostgreSQLSessionBackend.Configuration(url: text)
    _ = try? ListenAddress(parsing: text)
    if let list = try? ClientAllowList(parsing: text), (try? ClientAllowList(parsing: list.description)) != list {
        fatalError("an allow-list did not survive its own text: \(text)")
    }
    let redacted = BackendURLRedaction.redacted(text)
    if BackendURLRedaction.redacted(redacted) != redacted {
        fatalError("redacting a redacted URL changed it: \(text)")
    }
    if let origin = HTTPOrigin(text), HTTPOrigin(origin.description) != origin {
        fatalError("an origin did not survive its own text: \(text)")
    }
    return 0
}

exit(runFuzzer(testOneInput))
