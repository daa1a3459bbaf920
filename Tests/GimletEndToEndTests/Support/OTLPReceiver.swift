import Foundation

/// A real OTLP receiver: Arize Phoenix (an OpenTelemetry trace server, from
/// PyPI, installed into `.build-phoenix` by `scripts/install-otel-receiver`)
/// on a free loopback port, in its own directory (its spans in SQLite),
/// stopped by PID. It takes OTLP over HTTP at `/v1/traces` and lists what it
/// stored through its REST API.
final class OTLPReceiver: @unchecked Sendable {
    // @unchecked: immutable after init; the process is itself safe to share.
    let port: Int
    let directory: TemporaryDirectory
    let process: ManagedProcess
    private let client: HTTPClient

    /// What an exporter sets `OTEL_EXPORTER_OTLP_ENDPOINT` to (signals go to `/v1/<signal>` below it).
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let phoenix = ProcessInfo.processInfo.environment["GIMLET_PHOENIX"]
            ?? Repository.root.appendingPathComponent(".build-phoenix/bin/phoenix").path
        guard FileManager.default.isExecutableFile(atPath: phoenix) else {
            throw SetupError("\(phoenix) is missing: run scripts/install-otel-receiver (make test-otel does; it needs python3-venv)")
        }
        directory = try TemporaryDirectory("gimlet-otlp")
        port = try freeLoopbackPort()
        let grpcPort = try freeLoopbackPort()
        var environment = ProcessInfo.processInfo.environment
        environment["PHOENIX_WORKING_DIR"] = directory.path
        environment["PHOENIX_HOST"] = "127.0.0.1"
        environment["PHOENIX_PORT"] = "\(port)"
        environment["PHOENIX_GRPC_PORT"] = "\(grpcPort)"
        environment["PHOENIX_TELEMETRY_ENABLED"] = "false"
        process = try ManagedProcess("phoenix", executable: phoenix, arguments: ["serve"],
                                     outputPath: directory.file("phoenix.log"), environment: environment)
        client = HTTPClient(baseURL: "http://127.0.0.1:\(port)", scratch: directory)
        let (client, process) = (self.client, self.process)
        // Python imports and migrations: some 10 s alone, longer beside a build.
        guard waitUntil(seconds: 120, { process.isRunning && (try? client.get("/healthz").status) == 200 }) else {
            throw SetupError("phoenix did not start on port \(port): \(process.output.suffix(3000))")
        }
    }

    deinit { process.stop() }

    /// A span as the receiver stored it (Phoenix keeps no OpenTelemetry span kind).
    struct Span {
        let name: String
        let traceID: String
        let spanID: String
        let parentID: String?
        let status: String
        let attributes: [String: Any]
    }

    /// Every span the receiver holds for `traceID` (its default project's).
    func spans(trace traceID: String) throws -> [Span] {
        let answer = try client.get("/v1/projects/default/spans?limit=1000")
        guard answer.status == 200,
              let object = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any],
              let data = object["data"] as? [[String: Any]]
        else { throw SetupError("phoenix's span list: \(answer.status) \(answer.text.prefix(500))") }
        return data.compactMap { span in
            guard let context = span["context"] as? [String: Any], context["trace_id"] as? String == traceID,
                  let spanID = context["span_id"] as? String, let name = span["name"] as? String
            else { return nil }
            return Span(name: name, traceID: traceID,
                        spanID: spanID, parentID: span["parent_id"] as? String, status: span["status_code"] as? String ?? "",
                        attributes: span["attributes"] as? [String: Any] ?? [:])
        }
    }
}
