// session-lab: the session API over HTTP, for conformance tests, benchmarks
// and trying things out. A port of the original Gimlet's test application.
//
//   session-lab --fastcgi unix:/tmp/lab.sock --secret "$(openssl rand -hex 32)"
import ArgumentParser
import Foundation
import Gimlet
import GimletHost
import GimletHTTP
import GimletPostgreSQL
import GimletRedis
import GimletSQLite
import Logging
import Metrics
import ServiceLifecycle
import SessionLabApp
import Synchronization
import Tracing

@main
struct SessionLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-lab", abstract: "The Gimlet session API over HTTP (text/plain).", version: Host.version)

    @OptionGroup var host: HostOptions

    @Option(name: .long, help: ArgumentHelp(
        "Signing secret; repeat to rotate (first signs). Env GIMLET_SECRET, comma-separated.", valueName: "secret"))
    var secret: [String] = []

    @Option(name: .customLong("secret-file"), help: ArgumentHelp(
        "File of signing secrets, one per line, first signs; SIGHUP re-reads it. Env GIMLET_SECRET_FILE.",
        valueName: "path"))
    var secretFile: String?

    @Option(name: .customLong("encryption-key-file"), help: ArgumentHelp(
        "File of hex AES keys, one per line, first encrypts; SIGHUP re-reads it. Env GIMLET_ENCRYPTION_KEY_FILE.",
        valueName: "path"))
    var encryptionKeyFile: String?

    @Option(name: .customLong("encryption-key"), help: ArgumentHelp(
        "Hex AES key (64 hex digits for AES-256) to encrypt client-side values. Env GIMLET_ENCRYPTION_KEY.",
        valueName: "hex"))
    var encryptionKey: String?

    @Option(name: .long, help: ArgumentHelp(
        "Session backend: sqlite:PATH, redis://HOST:PORT/DB, redis+unix:///PATH, memory: or none. Env GIMLET_BACKEND. Default: sqlite: in GIMLET_DATA_DIR (./data).",
        valueName: "url"))
    var backend: String?

    @Flag(inversion: .prefixedNo, help: "Store keys client-side unless told otherwise. Env GIMLET_CLIENTSIDE.")
    var clientsideDefault: Bool?

    @Flag(inversion: .prefixedNo, help: "Store keys in the permanent channel unless told otherwise. Env GIMLET_PERMANENT.")
    var permanentDefault: Bool?

    @Option(name: .long, help: ArgumentHelp(
        "Directory GET /download/:bytes serves its files from (made on first use). Default: downloads in GIMLET_DATA_DIR (./data).",
        valueName: "path"))
    var downloads: String?

    @Option(name: .customLong("file-offload"), help: ArgumentHelp(
        "Who sends downloads: none (the host), nginx:/internal-prefix/ (X-Accel-Redirect) or apache (X-Sendfile). Env GIMLET_FILE_OFFLOAD; default none.",
        valueName: "who"))
    var fileOffload: String?

    func run() throws {
        var environment = ProcessInfo.processInfo.environment
        if !secret.isEmpty { environment["GIMLET_SECRET"] = secret.joined(separator: ",") }
        if let encryptionKey { environment["GIMLET_ENCRYPTION_KEY"] = encryptionKey }
        if let secretFile { environment["GIMLET_SECRET_FILE"] = secretFile }
        if let encryptionKeyFile { environment["GIMLET_ENCRYPTION_KEY_FILE"] = encryptionKeyFile }
        if let backend { environment["GIMLET_BACKEND"] = backend }
        if let clientsideDefault { environment["GIMLET_CLIENTSIDE"] = clientsideDefault ? "yes" : "no" }
        if let permanentDefault { environment["GIMLET_PERMANENT"] = permanentDefault ? "yes" : "no" }
        let hostConfiguration = try host.configuration()
        let offloadText = fileOffload ?? environment["GIMLET_FILE_OFFLOAD"] ?? "none"
        guard let offload = FileOffload(offloadText) else {
            throw ValidationError("--file-offload must be none, nginx:/internal-prefix/ or apache, not \(offloadText)")
        }
        // Made on the first download, not here: a lab that never serves one
        // needs no directory (and one started where it cannot write still
        // starts, to say what else is wrong).
        let downloadsDirectory = downloads ?? (environment["GIMLET_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data") + "/downloads"
        let files = SessionLabApp.Downloads(directory: downloadsDirectory, offload: offload)
        let style = try SessionLabApp.Style(environment: environment)
        // swift-metrics into the host's scoreboard (lab_sets_total), once, as swift-log would be.
        MetricsSystem.bootstrap(ScoreboardMetrics.shared)
        // Spans kept in memory and listed by GET /-/spans, for the tests (GIMLET_LAB_TRACER=memory).
        let tracer = environment["GIMLET_LAB_TRACER"] == "memory" ? LabTracer() : nil
        if let tracer { InstrumentationSystem.bootstrap(tracer) }
        // Built in each process that serves: a supervisor opens no backend.
        try Host.run(configuration: hostConfiguration) { logger in
            let sessions = try SessionConfiguration(environment: environment, backends: SessionBackends(.sqlite, .redis, .postgresql, logger: logger))
            let severalProcesses = hostConfiguration.workers > 0 || hostConfiguration.transport.address == .inherited
            if let backend = sessions.backend, !backend.sharesAcrossProcesses, severalProcesses {
                FileHandle.standardError.write(Data(
                    "warning: the \(backend.name) backend keeps sessions inside one process; with --workers or spawn-fcgi -F each process has its own\n".utf8))
            }
            var router = try SessionLabApp.router(sessions, style: style, downloads: files)
            // A service run beside the routes (ServingApp), and a line when the backends shut down,
            // so a test sees the order: last request, service stopped, backends shut down.
            let service = LabService(fails: environment["GIMLET_LAB_SERVICE"] == "fail", logger: logger)
            router.get("/service") { _ in .text(service.isRunning ? "running" : "stopped") }
            router.manage(ShutdownNote(logger: logger))
            if let tracer {
                router.get("/-/spans") { _ in .text(tracer.finished.withLock { $0.joined(separator: "\n") }) }
            }
            return ServingApp(router, services: [service])
        }
    }
}

/// The lab's service: running from before the first request until the
/// host's graceful stop; with `GIMLET_LAB_SERVICE=fail` it throws after
/// 100 ms instead, which stops the process that runs it.
final class LabService: Service, Sendable {
    struct Failed: Error, CustomStringConvertible {
        var description: String { "the lab service failed on purpose (GIMLET_LAB_SERVICE=fail)" }
    }

    private let running = Atomic<Bool>(false)
    private let fails: Bool
    private let logger: Logger

    init(fails: Bool, logger: Logger) {
        self.fails = fails
        self.logger = logger
    }

    var isRunning: Bool { running.load(ordering: .relaxed) }

    func run() async throws {
        running.store(true, ordering: .relaxed)
        logger.info("lab service: running")
        if fails {
            try await Task.sleep(for: .milliseconds(100))
            throw Failed()
        }
        try? await gracefulShutdown()
        running.store(false, ordering: .relaxed)
        logger.info("lab service: stopped")
    }
}

/// Says when the host shuts the responder (its backends) down.
struct ShutdownNote: HostLifecycle {
    let logger: Logger
    func shutdown() { logger.info("lab: the responder and its backends shut down") }
}
