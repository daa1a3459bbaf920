// traced: a Gimlet app whose requests become OpenTelemetry traces, sent to
// a collector over OTLP/HTTP by swift-otel.
//
// Each serving process (every worker under --workers) makes its tracer and
// the exporter's service; the host runs that service beside the routes
// (ServingApp) and, at a graceful stop, ends it after the last request, so
// the spans still queued are sent before the process exits.
//
// swift-otel reads the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT
// (default http://localhost:4318), OTEL_SERVICE_NAME, OTEL_BSP_SCHEDULE_DELAY
// (milliseconds between exports, default 5000), OTEL_TRACES_SAMPLER, …
import Gimlet
import GimletHost
import GimletHTTP
import GimletSQLite
import OTel
import Tracing

Host.main { environment, logger in
    var otel = OTel.Configuration.default
    otel.serviceName = "traced"
    otel.traces.otlpExporter.protocol = .httpProtobuf
    // Traces only: the host keeps its own metrics (the scoreboard) and logs.
    otel.metrics.enabled = false
    otel.logs.enabled = false
    otel.diagnosticLogger = .custom(logger)
    otel.diagnosticLogLevel = .warning
    let tracing = try OTel.makeTracingBackend(configuration: otel)
    // Before the first request, once per process, as swift-log's bootstrap.
    InstrumentationSystem.bootstrap(tracing.factory)

    var router = Router()
    router.use(try SessionMiddleware(SessionConfiguration(
        environment: environment, backends: SessionBackends(.sqlite, logger: logger))))

    // A server-side key: the span's children are the session's load and commit.
    router.get("/visit") { request in
        let visits = (request.session["visits"]?.intValue ?? 0) + 1
        request.session["visits"] = .int(visits)
        return .text("visits: \(visits)")
    }

    // The app's own span, a child of the request's.
    router.get("/report") { request async throws -> Response in
        try await withSpan("render report") { span in
            span.attributes["report.rows"] = 3
            try await Task.sleep(for: .milliseconds(5))
            return .text("report: 3 rows")
        }
    }

    return ServingApp(router, services: [tracing.service])
}
