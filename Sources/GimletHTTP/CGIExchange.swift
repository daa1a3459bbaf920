import Logging
import Synchronization

/// The part of a request's life that both transports share: CGI environ and
/// body in, CGI response bytes out.
///
/// FastCGI and SCGI differ only in how the environ and body arrive and how
/// the bytes leave; everything between lives here.
package enum CGIExchange {
    /// What the transport should do with the body, decided from `CONTENT_LENGTH`.
    package enum BodyPlan: Equatable, Sendable {
        /// Read exactly this many bytes (0 for none).
        case read(Int)
        /// Read until the end of the stream, refusing more than the limit.
        case readToEnd
        /// The announced body is over the limit: drain it and answer 413.
        case tooLarge
        /// `CONTENT_LENGTH` is not a number: answer 400.
        case invalidLength
    }

    /// Decides how to read the body.
    ///
    /// - Parameters:
    ///   - contentLength: the environ's `CONTENT_LENGTH`, if any.
    ///   - limit: the largest body the host accepts.
    package static func bodyPlan(contentLength: String?, limit: Int) -> BodyPlan {
        guard let contentLength, !contentLength.isEmpty else { return .readToEnd }
        guard contentLength.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), contentLength.utf8.count <= 18,
              let length = Int(contentLength)
        else { return .invalidLength }
        return length > limit ? .tooLarge : .read(length)
    }

    /// Runs `responder` for the request and returns the CGI response bytes.
    ///
    /// A response whose headers could split the header block is replaced by a
    /// logged 500; a `HEAD` request gets the headers without the body.
    ///
    /// While async code of the request waits, the worker thread watches
    /// `watch`: when the web server closes it the request is cancelled.
    package static func respond(
        environ: CGIEnvironment, body: [UInt8], responder: some Responder, logger: Logger,
        watch: ConnectionWatch? = nil
    ) -> [UInt8] {
        var unobserved: ObservedExchange? = nil
        return respond(environ: environ, body: body, responder: responder, logger: logger, watch: watch,
                       observed: &unobserved)
    }

    /// ``respond(environ:body:responder:logger:watch:)``, telling `observed`
    /// when the request starts and what it answered.
    package static func respond(
        environ: CGIEnvironment, body: [UInt8], responder: some Responder, logger: Logger,
        watch: ConnectionWatch?, observed: inout ObservedExchange?
    ) -> [UInt8] {
        let request = Request(environ: environ, body: body, logger: logger)
        request.connectionWatch = watch
        observed?.prepare(request)
        var response = responder.respond(to: request)
        if let id = request.id, response.headers["X-Request-Id"] == nil { response.headers["X-Request-Id"] = id }
        let (bytes, status) = answer(for: response, method: request.method, logger: request.logger)
        observed?.responded(request, status: status)
        return bytes
    }

    /// The CGI bytes of `error`, for answers the transport gives by itself (413, 400).
    package static func errorBytes(_ error: HTTPError, environ: CGIEnvironment, logger: Logger) -> [UInt8] {
        errorBytes(error, environ: environ, requestID: nil, logger: logger)
    }

    /// The same, with the request's id in an `X-Request-Id` header when it has one.
    package static func errorBytes(_ error: HTTPError, environ: CGIEnvironment, requestID: String?,
                                   logger: Logger) -> [UInt8] {
        var response = error.response
        if let requestID { response.headers["X-Request-Id"] = requestID }
        return bytes(for: response, method: HTTPMethod(environ["REQUEST_METHOD"] ?? "GET"), logger: logger)
    }

    /// The 413 answer for a body over `limit`.
    package static func tooLarge(limit: Int) -> HTTPError {
        HTTPError(.payloadTooLarge, "request body is larger than \(limit) bytes")
    }

    static func bytes(for response: Response, method: HTTPMethod, logger: Logger) -> [UInt8] {
        answer(for: response, method: method, logger: logger).bytes
    }

    /// The CGI bytes of `response` and the status they carry: a response
    /// that cannot be serialized safely becomes a 500.
    static func answer(for response: Response, method: HTTPMethod, logger: Logger) -> (bytes: [UInt8], status: Int) {
        do {
            let includeBody = method != .head
            let bytes = try response.cgiBytes(includeBody: includeBody)
            let headerBytes = bytes.count - (includeBody ? response.body.count : 0)
            if headerBytes > nginxDefaultHeaderBuffer { warnAboutLargeHeadersOnce(headerBytes, logger: logger) }
            return (bytes, response.status.code)
        } catch {
            logger.error("handler produced an unsafe response; sent 500 instead", metadata: ["error": "\(error)"])
            // A fixed response cannot fail to serialize.
            return ((try? Response.text("Internal Server Error", status: .internalServerError).cgiBytes()) ?? [], 500)
        }
    }

    /// nginx's default `fastcgi_buffer_size`/`scgi_buffer_size`: a larger
    /// header block gets 502 "upstream sent too big header" there.
    static let nginxDefaultHeaderBuffer = 4096
    // protected by: atomic exchange; set once per process.
    private static let warnedAboutLargeHeaders = Atomic<Bool>(false)

    /// Says once per process that a header block is over nginx's default
    /// buffer, so a deployment without the recipes' buffer lines learns
    /// why nginx answers 502.
    static func warnAboutLargeHeadersOnce(_ size: Int, logger: Logger) {
        guard !warnedAboutLargeHeaders.exchange(true, ordering: .relaxed) else { return }
        logger.warning("a response header block is \(size) bytes, over nginx's default 4k fastcgi_buffer_size/scgi_buffer_size, which answers 502 \"upstream sent too big header\"; set fastcgi_buffer_size 16k and fastcgi_buffers 8 16k (scgi_… for SCGI) as deploy/nginx/ does. Said once per process.")
    }
}
