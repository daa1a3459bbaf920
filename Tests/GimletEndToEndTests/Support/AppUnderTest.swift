import Foundation
import GimletFastCGI
import GimletHTTP
import GimletSCGI
import GimletTransport
import GimletTesting
import Logging
import Testing

/// Where a shared test body reaches the app: one body, run in process and
/// live (Hummingbird's `.router` and `.live`). Every reach runs the same
/// exchange (`CGIExchange`): the body limit, `HEAD`, the header checks and
/// the response's bytes.
enum Reach: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `TestClient`: the exchange without a socket.
    case inProcess
    /// `FastCGIServer` in the test process, behind nginx with
    /// `deploy/nginx/gimlet.conf` and Debian's `fastcgi_params`, through curl.
    case fastCGI
    /// `SCGIServer` likewise, behind `deploy/nginx/gimlet-scgi.conf`.
    case scgi

    var testDescription: String { rawValue }
}

extension HTTPResult {
    /// The `Set-Cookie` value for cookie `name`, if one was sent.
    func setCookie(_ name: String) -> String? { headers("Set-Cookie").first { $0.hasPrefix(name + "=") } }
}

/// A client with a cookie jar, like a browser's; its answers are
/// ``HTTPResult``s whichever the reach.
protocol AppClient {
    func request(_ method: String, _ uri: String, body: [UInt8]?, headers: [String: String]) throws -> HTTPResult
}

extension AppClient {
    func get(_ uri: String) throws -> HTTPResult { try request("GET", uri, body: nil, headers: [:]) }
}

private struct InProcessClient: AppClient {
    let client: TestClient

    func request(_ method: String, _ uri: String, body: [UInt8]?, headers: [String: String]) throws -> HTTPResult {
        let answer = client.request(method, uri, body: body ?? [], headers: headers)
        return HTTPResult(status: answer.status, headers: answer.response.headers.map { ($0.name, $0.value) },
                          body: answer.response.body)
    }
}

private struct LiveClient: AppClient {
    let client: HTTPClient

    func request(_ method: String, _ uri: String, body: [UInt8]?, headers: [String: String]) throws -> HTTPResult {
        try client.request(method, uri, body: body, headers: headers)
    }
}

/// Runs `body` against `router`, reached by `reach`. Live, the server runs
/// on 2 threads and is stopped (and nginx with it) when `body` returns or throws.
func withApp(_ router: Router, reach: Reach, maxBodyBytes: Int = 1 << 20,
             _ body: (any AppClient) throws -> Void) throws {
    if reach == .inProcess {
        let client = TestClient(router)
        client.maxBodyBytes = maxBodyBytes
        return try body(InProcessClient(client: client))
    }
    let directory = try TemporaryDirectory("gimlet-reach")
    let socket = directory.file("app.sock")
    let logger = Logger(label: "test")
    let server: any TransportServer
    let config: String
    if reach == .scgi {
        server = try SCGIServer(configuration: SCGIConfiguration(listen: .unix(path: socket), threads: 2,
                                                                 maxBodyBytes: maxBodyBytes, socketMode: 0o666),
                                responder: router, logger: logger)
        config = "gimlet-scgi.conf"
    } else {
        server = try FastCGIServer(configuration: FastCGIConfiguration(listen: .unix(path: socket), threads: 2,
                                                                       maxBodyBytes: maxBodyBytes, socketMode: 0o666),
                                   responder: router, logger: logger)
        config = "gimlet.conf"
    }
    let stopped = Handoff<Bool>()
    Thread { server.run(); stopped.put(true) }.start()
    defer {
        server.stop()
        _ = stopped.take(seconds: 10)
    }
    let nginx = try Nginx(socket: socket, config: config)
    var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
    client.cookieJar = directory.file("cookies.txt")
    let probe = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
    guard waitUntil(seconds: 10, { ((try? probe.get("/"))?.status ?? 502) != 502 }) else {
        throw SetupError("\(reach) did not answer through nginx: \(nginx.errorLog)")
    }
    try body(LiveClient(client: client))
}
