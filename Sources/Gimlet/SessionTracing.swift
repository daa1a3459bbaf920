import GimletHTTP
import Tracing

/// The session's store round trips as child spans of the request's span
/// (``GimletHTTP/Request/traceContext``), when the app bootstrapped a
/// tracer: `session load` and `session commit`, of kind client, with
/// OpenTelemetry's `db.system` (`sqlite`, `redis`, `postgresql`). Without a
/// tracer, one load and a branch.
enum SessionTracing {
    /// Runs `body`, one round trip to `backend`, inside a span named `name`.
    static func span<T>(_ name: String, backend: any SessionBackend, _ body: () throws -> T) rethrows -> T {
        guard RequestTracing.isOn, let tracer = RequestTracing.tracer else { return try body() }
        let span = tracer.startAnySpan(name, context: InstrumentationContext.current ?? .topLevel, ofKind: .client)
        span.attributes["db.system"] = system(of: backend.name)
        defer { span.end() }
        do {
            return try body()
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// `db.system` from a backend's name (`sqlite:/path`, `redis+sentinel://…`, `postgresql://…`).
    static func system(of name: String) -> String {
        let scheme = name.prefix { $0 != ":" }
        if scheme.hasPrefix("redis") { return "redis" }
        if scheme.hasPrefix("postgres") { return "postgresql" }
        return String(scheme)
    }
}
