import Testing
@testable import GimletTransport
import GimletTransport

@Suite struct ListenAddressParsing {
    @Test(arguments: [
        ("unix:/run/app.sock", ListenAddress.unix(path: "/run/app.sock")),
        ("/run/app.sock", .unix(path: "/run/app.sock")),
        ("unix:relative.sock", .unix(path: "relative.sock")),
        ("127.0.0.1:9000", .tcp(host: "127.0.0.1", port: 9000)),
        (":9000", .tcp(host: "127.0.0.1", port: 9000)),
        ("0.0.0.0:9000", .tcp(host: "0.0.0.0", port: 9000)),
        ("localhost:1", .tcp(host: "localhost", port: 1)),
    ])
    func parses(text: String, expected: ListenAddress) throws {
        #expect(try ListenAddress(parsing: text) == expected)
    }

    @Test(arguments: ["", "unix:", "9000", "host:0", "host:65536", "host:x", "[::1]:9000", "::1:9000",
                      "unix:/a:b", "unix:/" + String(repeating: "x", count: 120)])
    func refuses(text: String) {
        #expect(throws: TransportError.self) { try ListenAddress(parsing: text) }
    }
}
