import Tracing

/// A span per request through swift-distributed-tracing, when the app has
/// bootstrapped a tracer (`InstrumentationSystem.bootstrap`, before
/// `Host.main`); nothing otherwise.
///
/// - The request's context comes from its headers through the tracer's own
///   propagation (W3C `traceparent` and `tracestate` with an OpenTelemetry
///   tracer; nginx and Apache pass both to the app as `HTTP_TRACEPARENT`,
///   `HTTP_TRACESTATE`).
/// - The server span is named `METHOD route` (`GET /users/:id`; the method
///   alone when no route matched) and carries OpenTelemetry's HTTP server
///   attributes: `http.request.method`, `url.path`, `http.route`,
///   `http.response.status_code`; a 5xx marks it an error. It covers the
///   middleware and the handler, the session's load and commit included,
///   which are its child spans (`Gimlet`).
/// - Its context is `request.traceContext` and the task-local
///   `InstrumentationContext.current` while the responder runs, so a
///   handler's own spans (and an async handler's, and its libraries') are
///   its children; its trace id is on the request's log lines and in the
///   access log (`trace_id`).
package enum RequestTracing {
    /// The bootstrapped tracer, looked up once, at the first request; `nil`
    /// without one. A request checks ``isOn`` first, not this.
    package static let tracer: (any Tracer)? = {
        let tracer = InstrumentationSystem.tracer
        return tracer is NoOpTracer ? nil : tracer
    }()

    /// Whether there is a ``tracer``: what a request checks (a flag: copying
    /// the optional existential itself cost a request some 200 instructions).
    package static let isOn = tracer != nil

    /// `responder`'s answer to `request` inside the request's server span,
    /// the span's context task-local meanwhile; and the span, to end.
    static func respond(to request: Request, responder: some Responder) -> (Response, (any Span)?) {
        guard let tracer else { return (responder.respond(to: request), nil) }
        let span = start(request, tracer: tracer)
        let response = InstrumentationContext.$current.withValue(span.context) { responder.respond(to: request) }
        return (response, span)
    }

    /// Starts `request`'s server span and gives the request its context and trace id.
    static func start(_ request: Request, tracer: any Tracer) -> any Span {
        var context = InstrumentationContext.topLevel
        tracer.extract(request.environ, into: &context, using: EnvironExtractor())
        let span = tracer.startAnySpan(request.method.rawValue, context: context, ofKind: .server)
        span.attributes["http.request.method"] = request.method.rawValue
        span.attributes["url.path"] = request.path
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: DictionaryInjector())
        let traceID = headers["traceparent"].flatMap(traceID(of:))
        request.trace = RequestTrace(context: span.context, traceID: traceID)
        if let traceID { request.logger[metadataKey: "trace_id"] = "\(traceID)" }
        return span
    }

    /// Ends `request`'s server span, which answered `status`.
    static func end(_ span: any Span, request: Request, status: Int) {
        if let route = request.routePattern {
            span.operationName = "\(request.method.rawValue) \(route)"
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
        span.end()
    }

    /// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if it is one.
    static func traceID(of traceparent: String) -> String? {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[1].utf8.count == 32, parts[2].utf8.count == 16,
              parts[1].utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              parts[1].utf8.contains(where: { $0 != 0x30 })
        else { return nil }
        return String(parts[1])
    }

    /// Headers from the environ: `traceparent` is `HTTP_TRACEPARENT`.
    struct EnvironExtractor: Extractor {
        func extract(key: String, from carrier: CGIEnvironment) -> String? {
            carrier["HTTP_" + String(key.uppercased().map { $0 == "-" ? "_" : $0 })]
        }
    }

    /// Headers into a dictionary, to read the trace id the tracer propagates.
    struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key.lowercased()] = value
        }
    }
}

/// A traced request's span context and trace id: one reference on the
/// request, nil unless a tracer is bootstrapped.
package final class RequestTrace {
    let context: InstrumentationContext
    let traceID: String?

    init(context: InstrumentationContext, traceID: String?) {
        self.context = context
        self.traceID = traceID
    }
}
