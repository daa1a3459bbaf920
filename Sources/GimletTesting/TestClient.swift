import Foundation
import GimletHTTP
import Logging
import Synchronization

/// A response as a test sees it.
public struct TestResponse: Sendable {
    /// The response the app produced.
    public let response: Response
    /// The body as text.
    public var text: String { String(decoding: response.body, as: UTF8.self) }
    /// The status code.
    public var status: Int { response.status.code }
    /// Every `Set-Cookie` value.
    public var setCookies: [String] { response.headers.values(for: "Set-Cookie") }
    /// The `Set-Cookie` value for cookie `name`, if one was sent.
    public func setCookie(_ name: String) -> String? { setCookies.first { $0.hasPrefix(name + "=") } }
}

/// Drives a router (or any responder) in-process from CGI environs, the way
/// nginx would call it, and keeps a cookie jar between requests like a browser.
///
/// Each request takes the path a FastCGI or SCGI request takes, without the
/// socket: the same body limit (413 over ``maxBodyBytes``, 400 for a bad
/// `Content-Length`), `HEAD` answered without its body, a response whose
/// headers could split the header block replaced by a 500, and the answer
/// read back from the CGI bytes a web server would get.
///
/// ```swift
/// let client = TestClient(router)
/// #expect(client.get("/set/user/frodo").text == "ok")
/// #expect(client.get("/get/user").text == "frodo")   // the jar sent the cookies back
/// ```
///
/// Sync and async test bodies alike: in async code the same calls are
/// awaited (`await client.get("/x")`).
///
/// Not thread-safe: one client per test.
public final class TestClient {
    /// The app under test.
    public let responder: any Responder
    /// The cookies the "browser" holds, by name.
    public var cookies: [String: String] = [:]
    /// Whether requests arrive over HTTPS (`HTTPS=on`).
    public var secure: Bool
    /// Extra CGI parameters sent with every request.
    public var environ: [String: String] = [:]
    /// What request bodies may be, as the host's `--max-body`,
    /// `--body-buffer` and `--body-temp-dir`: a body over `maxBytes` gets 413
    /// without reaching the app; one over `memoryBytes` reaches it in a
    /// temporary file (`request.body.file`), as on the host.
    public var bodyLimits = BodyLimits()
    /// The largest request body accepted, as the host's `--max-body`
    /// (``bodyLimits``' `maxBytes`).
    public var maxBodyBytes: Int {
        get { bodyLimits.maxBytes }
        set { bodyLimits.maxBytes = newValue }
    }
    /// Where the app's log lines go (`request.logger`).
    public var logger = Request.defaultLogger

    /// A client for `responder`.
    public init(_ responder: some Responder, secure: Bool = false) {
        self.responder = responder
        self.secure = secure
    }

    /// Sends a GET.
    @discardableResult
    public func get(_ uri: String, headers: [String: String] = [:]) -> TestResponse {
        request("GET", uri, headers: headers)
    }

    /// Sends a GET from async test code (see the async `request(_:_:body:contentType:headers:)`).
    @discardableResult
    public func get(_ uri: String, headers: [String: String] = [:]) async -> TestResponse {
        await request("GET", uri, headers: headers)
    }

    /// Sends a request; the body as given, `Cookie` from the jar unless `headers` has one.
    @discardableResult
    public func request(_ method: String, _ uri: String, body: [UInt8] = [], contentType: String? = nil,
                        headers: [String: String] = [:]) -> TestResponse {
        let environ = environ(method, uri, body: body, contentType: contentType, headers: headers)
        return received(Self.exchange(environ: environ, body: body, responder: responder, limits: bodyLimits,
                                      logger: logger))
    }

    /// Sends a request from async test code. The app runs on a thread of its
    /// own, as on a worker thread of the host, while the test's task awaits
    /// it without blocking a thread of Swift's pool.
    @discardableResult
    public func request(_ method: String, _ uri: String, body: [UInt8] = [], contentType: String? = nil,
                        headers: [String: String] = [:]) async -> TestResponse {
        let environ = environ(method, uri, body: body, contentType: contentType, headers: headers)
        let (responder, limits, logger) = (self.responder, self.bodyLimits, self.logger)
        let response = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Self.exchange(environ: environ, body: body, responder: responder,
                                                             limits: limits, logger: logger))
            }.start()
        }
        return received(response)
    }

    /// Runs the request through the transports' exchange and reads the
    /// answer back; a request dropped without one (a body shorter than its
    /// `Content-Length`) is the 502 nginx would answer.
    private static func exchange(environ: [String: String], body: [UInt8], responder: any Responder,
                                 limits: BodyLimits, logger: Logger) -> Response {
        let channel = BufferChannel(body: body, authorizerRole: environ["FCGI_ROLE"] == "AUTHORIZER")
        var unobserved: ObservedExchange? = nil
        CGIExchange.serve(environ: CGIEnvironment(environ), channel: channel, limits: limits,
                          responder: responder, logger: logger, observed: &unobserved)
        return Response(cgiBytes: channel.written)
            ?? .text("Bad Gateway: the app sent no answer", status: .badGateway)
    }

    private func received(_ response: Response) -> TestResponse {
        for header in response.headers.values(for: "Set-Cookie") { store(setCookie: header) }
        return TestResponse(response: response)
    }

    /// The CGI environ nginx would send for the request.
    private func environ(_ method: String, _ uri: String, body: [UInt8], contentType: String?,
                         headers: [String: String]) -> [String: String] {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let query = uri.contains("?") ? String(uri.split(separator: "?", maxSplits: 1).last ?? "") : ""
        var environ: [String: String] = [
            "REQUEST_METHOD": method, "REQUEST_URI": uri, "QUERY_STRING": query, "SCRIPT_NAME": path,
            "DOCUMENT_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
            "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": secure ? "443" : "80",
            "REQUEST_SCHEME": secure ? "https" : "http", "HTTP_HOST": "localhost",
            "CONTENT_LENGTH": body.isEmpty ? "" : String(body.count), "CONTENT_TYPE": contentType ?? "",
        ]
        if secure { environ["HTTPS"] = "on" }
        if !cookies.isEmpty {
            environ["HTTP_COOKIE"] = cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: "; ")
        }
        for (name, value) in headers { environ[Self.environKey(name)] = value }
        for (key, value) in self.environ { environ[key] = value }
        return environ
    }

    /// Applies a `Set-Cookie` value to the jar (a `Max-Age` of 0 or less deletes).
    public func store(setCookie header: String) {
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: " ") }
        guard let pair = parts.first, let equals = pair.firstIndex(of: "=") else { return }
        let name = String(pair[..<equals])
        let value = String(pair[pair.index(after: equals)...])
        let maxAge = parts.dropFirst().first { $0.lowercased().hasPrefix("max-age=") }
            .flatMap { Int($0.dropFirst(8)) }
        if let maxAge, maxAge <= 0 { cookies[name] = nil } else { cookies[name] = value }
    }

    private static func environKey(_ header: String) -> String {
        let key = header.uppercased().replacingCharacters("-", "_")
        return key == "CONTENT_TYPE" || key == "CONTENT_LENGTH" ? key : "HTTP_" + key
    }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var slice = self[...]
        while slice.first == character { slice = slice.dropFirst() }
        while slice.last == character { slice = slice.dropLast() }
        return String(slice)
    }

    fileprivate func replacingCharacters(_ old: Character, _ new: Character) -> String {
        String(map { $0 == old ? new : $0 })
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        String(self).trimmingCharacters(in: character)
    }
}

/// A request's body and answer in memory: ``TestClient``'s
/// ``GimletHTTP/ExchangeChannel``. The body comes in chunks of at most
/// 64 KiB, as from a socket.
private final class BufferChannel: ExchangeChannel {
    let body: [UInt8]
    var offset = 0
    var written: [UInt8] = []
    /// An environ with `FCGI_ROLE=AUTHORIZER` asks as a FastCGI authorizer would.
    let isAuthorizerRole: Bool

    init(body: [UInt8], authorizerRole: Bool) {
        self.body = body
        isAuthorizerRole = authorizerRole
    }

    func readBody(into buffer: inout [UInt8], maximum: Int) -> BodyChunkRead {
        guard offset < body.count else { return .end }
        let end = min(body.count, offset + min(maximum, 64 * 1024))
        buffer.append(contentsOf: body[offset..<end])
        offset = end
        return .bytes
    }

    func drainBody() { offset = body.count }

    func write(_ bytes: [UInt8]) -> Bool {
        written += bytes
        return true
    }

    /// Runs the stream's producer to its end, on this thread, and keeps
    /// everything it wrote after the headers.
    func startStream(head: [UInt8], stream: ResponseStream, logger: Logger) {
        written += head
        let sink = BufferSink()
        CGIExchange.runHere(stream, into: sink, logger: logger)
        written += sink.bytes.withLock { $0 }
    }

    var connectionWatch: ConnectionWatch? { nil }
}

/// A streaming response's bytes, for ``BufferChannel``.
private final class BufferSink: StreamSink {
    // protected by: the mutex.
    let bytes = Mutex<[UInt8]>([])

    func write(_ bytes: [UInt8]) async throws { self.bytes.withLock { $0 += bytes } }
}

extension Response {
    /// Reads a CGI response (RFC 3875 §6) back, as a web server would:
    /// `nil` when there are no bytes or no header block.
    fileprivate init?(cgiBytes bytes: [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }) else {
            return nil
        }
        var status = HTTPStatus.ok
        var headers = HTTPHeaders()
        for line in String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...].drop { $0 == " " })
            if name == "Status" {
                let parts = value.split(separator: " ", maxSplits: 1)
                guard let code = parts.first.flatMap({ Int($0) }) else { return nil }
                status = HTTPStatus(code: code, reasonPhrase: parts.count > 1 ? String(parts[1]) : nil)
            } else {
                headers.add(name, value)
            }
        }
        self.init(status: status, headers: headers, body: Array(bytes[(end + 4)...]))
    }
}
