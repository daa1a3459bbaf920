import Logging
import Synchronization
import Tracing

/// How one request's bytes move on a transport: what ``CGIExchange`` asks of
/// FastCGI's request slot, SCGI's connection and `TestClient`'s buffers.
///
/// Everything else (the body limits, memory or temporary file, the 400 and
/// 413 answers, `HEAD`, header checks, the response's bytes) is
/// ``CGIExchange/serve(environ:channel:limits:responder:logger:observed:)``'s,
/// the same for all three. A channel is a class: a streamed body reads from
/// it while the handler runs.
package protocol ExchangeChannel: AnyObject {
    /// Appends the next bytes of the body to `buffer`, at most `maximum`
    /// (more than 0), waiting for them; `.end` once the body is over. Each
    /// read that brings bytes gives the request's read deadline a new start.
    func readBody(into buffer: inout [UInt8], maximum: Int) -> BodyChunkRead
    /// Reads and drops what the web server still sends of the body
    /// (bounded), so that it reads the answer rather than a reset; ends the
    /// request's read deadline.
    func drainBody()
    /// Writes the answer; `false` when the web server has gone.
    func write(_ bytes: [UInt8]) -> Bool
    /// What the worker thread watches while the request's async code waits:
    /// the web server closing it cancels the request.
    var connectionWatch: ConnectionWatch? { get }
    /// Writes `head` (the CGI header block) and hands the connection and
    /// `stream` to the transport's stream pump, which runs the producer and
    /// ends the response; the worker thread is free as soon as this returns.
    /// The connection is not used for another request.
    func startStream(head: [UInt8], stream: ResponseStream, logger: Logger)
    /// Whether the request came in the FastCGI `AUTHORIZER` role: it has no
    /// body (the web server may send no input stream at all), and the router
    /// sends it to its access check. `false` by default.
    var isAuthorizerRole: Bool { get }
}

extension ExchangeChannel {
    package var isAuthorizerRole: Bool { false }
}

/// What one read of a request's body gave.
package enum BodyChunkRead: Equatable, Sendable {
    /// Bytes were appended.
    case bytes
    /// The body is over (its length reached, or its stream's end).
    case end
    /// The stream failed or stalled; `reason` says how.
    case failed(String)
}

/// The part of a request's life that every transport shares: CGI environ
/// and body in, CGI response bytes out.
///
/// FastCGI, SCGI and `TestClient` differ only in how the environ and body
/// arrive and how the bytes leave (their ``ExchangeChannel``); the policy
/// between lives here, once.
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

    /// Serves one request whose environ has arrived on `channel`: reads the
    /// body within `limits` (or refuses it: 413 over the maximum, or over
    /// the memory limit for a form or JSON body; 400 for a `CONTENT_LENGTH`
    /// that is not a number), unless the route streams it
    /// (``Responder/streamsBody(_:)``); runs `responder`; drains what the
    /// handler left of the body; writes the answer; and tells `observed`
    /// each step. A body that ends early is logged and gets no answer: the
    /// request is dropped, and its session changes are not stored.
    ///
    /// - Parameter contentLength: the body's length when the transport
    ///   knows better than the environ's `CONTENT_LENGTH`.
    package static func serve(
        environ: CGIEnvironment, channel: some ExchangeChannel, limits: BodyLimits,
        responder: some Responder, logger: Logger, observed: inout ObservedExchange?, contentLength: String? = nil
    ) {
        let expected: Int?
        // An authorizer gets no body, whatever CONTENT_LENGTH the server passed on.
        let authorizerRole = channel.isAuthorizerRole
        switch bodyPlan(contentLength: authorizerRole ? "0" : contentLength ?? environ["CONTENT_LENGTH"], limit: limits.maxBytes) {
        case .read(let length): expected = length
        case .readToEnd: expected = nil
        case .tooLarge:
            channel.drainBody()
            return refuse(tooLarge(limit: limits.maxBytes), environ: environ, channel: channel, logger: logger,
                          observed: &observed)
        case .invalidLength:
            channel.drainBody()
            return refuse(HTTPError(.badRequest, "invalid Content-Length"), environ: environ, channel: channel,
                          logger: logger, observed: &observed)
        }
        // Worked out only for a body past the memory limit: most requests never need it.
        if let expected, expected > limits.memoryBytes, BodyLimits.isParsedInMemory(environ["CONTENT_TYPE"]) {
            channel.drainBody()
            return refuse(limits.tooLargeForMemory, environ: environ, channel: channel, logger: logger, observed: &observed)
        }
        let stream = BodyStream(channel: channel, expected: expected, limit: limits.maxBytes)
        let request = Request(environ: environ, line: observed?.line ?? RequestLine(environ),
                              body: RequestBody(stream: stream, limits: limits), logger: logger)
        request.connectionWatch = channel.connectionWatch
        request.isAuthorizerRole = authorizerRole
        if expected == 0 || !responder.streamsBody(request) {
            do {
                try request.body.load(memoryOnly: BodyLimits.isParsedInMemory(environ["CONTENT_TYPE"]))
            } catch {
                if request.body.endedEarly { return dropped(stream, logger: logger, observed: &observed) }
                let refusal: HTTPError
                if let error = error as? HTTPError { refusal = error } else {
                    logger.error("the request body could not be stored; answered 500", metadata: [
                        "error": "\(error)", "directory": "\(limits.temporaryDirectory)",
                    ])
                    refusal = HTTPError(.internalServerError, "the request body could not be stored")
                }
                return refuse(refusal, environ: environ, channel: channel, logger: logger, observed: &observed)
            }
        }
        let (output, file, responseStream) = respond(to: request, responder: responder, observed: &observed)
        request.body.finish()
        if request.body.endedEarly { return dropped(stream, logger: logger, observed: &observed) }
        if let responseStream, request.method != .head {
            channel.startStream(head: output, stream: responseStream, logger: request.logger)
            observed?.written(output.count)
            return
        }
        var written = output.count
        var open = channel.write(output)
        if open, let file, request.method != .head {
            // The headers promised file.length bytes: a file that cannot give
            // them ends the answer short, which the web server reports.
            if let problem = file.send({ chunk in
                open = channel.write(chunk)
                written += open ? chunk.count : 0
                return open
            }) {
                request.logger.error("a file being sent could not be read; the answer is cut short", metadata: [
                    "path": "\(file.path)", "error": "\(problem)",
                ])
            }
        }
        if !open {
            logger.debug("the web server closed the connection before the response was written")
        }
        observed?.written(written)
    }

    /// Runs `stream`'s producer to its end on the calling thread (its own
    /// executor, as an async handler runs), for a transport without a
    /// stream pump (`TestClient`): no thread of Swift's shared pool is
    /// waited on, so tests that block their threads cannot starve it.
    package static func runHere(_ stream: ResponseStream, into sink: some StreamSink, logger: Logger) {
        let request = Request(environ: CGIEnvironment([:]), body: [], logger: logger)
        do {
            try WorkerThreadExecutor.run(request) { _ in try await stream.run(into: sink) }
        } catch is CancellationError {
        } catch {
            logger.error("a streaming response's producer failed; the response ends here", metadata: ["error": "\(error)"])
        }
    }

    /// Logs a request whose body ended early, which gets no answer.
    private static func dropped(_ stream: BodyStream, logger: Logger, observed: inout ObservedExchange?) {
        var metadata: Logger.Metadata = ["received": "\(stream.received)"]
        if let expected = stream.expected { metadata["expected"] = "\(expected)" }
        if case .short(_, _, let reason) = stream.ending { metadata["reason"] = "\(reason)" }
        if let observed { metadata["request_id"] = "\(observed.requestID)" }
        logger.info("request body ended early; request dropped", metadata: metadata)
        observed?.answered(status: 0)
        observed?.written(0)
    }

    /// Writes the transport's own answer (413, 400), the responder not run.
    private static func refuse(_ error: HTTPError, environ: CGIEnvironment, channel: some ExchangeChannel,
                               logger: Logger, observed: inout ObservedExchange?) {
        let format = ErrorFormat(environ: environ)
        var response = error.response(in: format)
        if let requestID = observed?.requestID { response.headers["X-Request-Id"] = requestID }
        let bytes = answer(for: response, method: HTTPMethod(environ["REQUEST_METHOD"] ?? "GET"), logger: logger,
                           errorFormat: format).bytes
        observed?.answered(status: error.status.code)
        _ = channel.write(bytes)
        observed?.written(bytes.count)
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
    static func respond(
        environ: CGIEnvironment, body: [UInt8], responder: some Responder, logger: Logger,
        watch: ConnectionWatch?, observed: inout ObservedExchange?
    ) -> [UInt8] {
        let request = Request(environ: environ, body: body, logger: logger)
        request.connectionWatch = watch
        return respond(to: request, responder: responder, observed: &observed).bytes
    }

    private typealias Answer = (bytes: [UInt8], file: ResponseFile?, stream: ResponseStream?)

    /// Runs `responder` for `request`, whose body is read or streams, and
    /// returns the CGI response bytes, and the file to send after them.
    private static func respond(to request: Request, responder: some Responder, observed: inout ObservedExchange?) -> Answer {
        observed?.prepare(request)
        var response: Response
        var span: (any Span)?
        if RequestTracing.isOn {
            (response, span) = RequestTracing.respond(to: request, responder: responder)
        } else {
            response = responder.respond(to: request)
        }
        if let id = request.id, response.headers["X-Request-Id"] == nil { response.headers["X-Request-Id"] = id }
        let (bytes, status) = answer(for: response, method: request.method, logger: request.logger,
                                     errorFormat: ErrorFormat(accept: request.headers["Accept"], contentType: request.headers["Content-Type"]))
        observed?.responded(request, status: status)
        if let span { RequestTracing.end(span, request: request, status: status) }
        // A response replaced by a 500 (unsafe headers) sends neither its file nor its stream.
        let own = status == response.status.code
        return (bytes, own ? response.file : nil, own ? response.stream : nil)
    }

    /// The 413 answer for a body over `limit`.
    static func tooLarge(limit: Int) -> HTTPError { RequestBody.tooLarge(limit) }

    /// The CGI bytes of `response` and the status they carry: a response
    /// that cannot be serialized safely becomes a 500, in `errorFormat`
    /// (worked out only then: most requests never need it).
    static func answer(for response: Response, method: HTTPMethod, logger: Logger,
                       errorFormat: @autoclosure () -> ErrorFormat) -> (bytes: [UInt8], status: Int) {
        do {
            let includeBody = method != .head
            let bytes = try response.cgiBytes(includeBody: includeBody)
            let headerBytes = bytes.count - (includeBody ? response.body.count : 0)
            if headerBytes > nginxDefaultHeaderBuffer { warnAboutLargeHeadersOnce(headerBytes, logger: logger) }
            return (bytes, response.status.code)
        } catch {
            logger.error("handler produced an unsafe response; sent 500 instead", metadata: ["error": "\(error)"])
            // A fixed response cannot fail to serialize.
            return ((try? HTTPError(.internalServerError).response(in: errorFormat()).cgiBytes(includeBody: method != .head)) ?? [], 500)
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
