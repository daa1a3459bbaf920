import Dispatch
import GimletHTTP
import Logging
import ServiceLifecycle
import Synchronization

/// A responder with the swift-service-lifecycle services its handlers use:
/// a database client, an exporter, anything whose `run()` must be running.
///
/// Return it from the closure given to `Host.main` or `Host.run`, which builds
/// it in every serving process (each worker under `--workers`):
///
/// ```swift
/// Host.main { environment, logger in
///     let client = ReportClient(logger: logger)     // a Service
///     var router = Router()
///     router.get("/report") { request async throws -> Response in
///         .text(try await client.latest())
///     }
///     return ServingApp(router, services: [client])
/// }
/// ```
///
/// - **Start**: the services' `run()` starts on Swift's global executor
///   before the process accepts its first request.
/// - **Stop**: at a graceful stop they are asked to finish (swift-service-lifecycle's
///   graceful shutdown, then cancellation after 10 s) after the last request
///   has been answered and before the responder's backends shut down.
/// - **Failure**: a service that throws, or returns while the process
///   serves, stops that process with one log line and exit status 1; under
///   `--workers` the supervisor starts another, with its back-off.
/// - **Awaiting a service from a handler**: an async handler that awaits
///   the client waits on its worker thread, as for any await; the client's
///   own work runs on its threads (or Swift's pool). So a worker thread is
///   held for the whole wait: size `--threads` for the awaits in flight.
public struct ServingApp: Responder {
    /// What answers the requests.
    public let responder: any Responder
    /// What runs beside it, in the same process.
    public let services: [any Service]

    /// `responder`, with `services` run beside it.
    public init(_ responder: some Responder, services: [any Service]) {
        self.responder = responder
        self.services = services
    }

    public func respond(to request: Request) -> Response { responder.respond(to: request) }
    public func streamsBody(_ request: Request) -> Bool { responder.streamsBody(request) }
    public func validate() throws { try responder.validate() }
    public func reload() throws { try responder.reload() }
    public func shutdown() { responder.shutdown() }

    /// The responder to serve and the services to run: a `ServingApp` is
    /// unwrapped, so its requests pay nothing for it.
    static func split(_ responder: any Responder) -> (responder: any Responder, services: [any Service]) {
        guard let app = responder as? ServingApp else { return (responder, []) }
        let (inner, more) = split(app.responder)
        return (inner, app.services + more)
    }
}

/// The services of one serving process, run as a swift-service-lifecycle
/// `ServiceGroup` that takes no signal (the host owns them).
final class ServiceRunner: Sendable {
    private let group: ServiceGroup
    private let logger: Logger
    private let count: Int
    /// Set once the host asks the services to finish: their end is then expected.
    private let stopping = Atomic<Bool>(false)
    private let ended = DispatchSemaphore(value: 0)
    // protected by: the mutex; why the services ended early, if they did.
    private let failed = Mutex<String?>(nil)

    /// The longest a graceful stop waits for the services before cancelling them.
    static let gracefulStop = Duration.seconds(10)

    init(services: [any Service], logger: Logger) {
        var configuration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            logger: ServiceRunner.quiet(logger))
        configuration.maximumGracefulShutdownDuration = Self.gracefulStop
        configuration.maximumCancellationDuration = .seconds(5)
        group = ServiceGroup(configuration: configuration)
        self.logger = logger
        count = services.count
    }

    /// The group's own lines only from warnings up: the host says what matters in one line.
    private static func quiet(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        return quiet
    }

    /// Starts the services on Swift's global executor. If they end while
    /// the process serves, one line is logged and `stopServing` runs.
    func start(stopServing: @escaping @Sendable () -> Void) {
        logger.debug("services starting", metadata: ["count": "\(count)"])
        Task.detached { [self] in
            var reason: String?
            do {
                try await group.run()
                if !stopping.load(ordering: .acquiring) { reason = "a service returned while the process was serving" }
            } catch {
                if !stopping.load(ordering: .acquiring) { reason = "\(error)" }
            }
            if let reason {
                failed.withLock { $0 = reason }
                logger.error("a service failed: this process stops serving and exits 1", metadata: ["error": "\(reason)"])
                stopServing()
            }
            ended.signal()
        }
    }

    /// After the last request: asks the services to finish and waits until
    /// they have (cancelled past ``gracefulStop``).
    ///
    /// - Throws: ``ServiceFailure`` if they had ended early.
    func stop() throws(ServiceFailure) {
        stopping.store(true, ordering: .releasing)
        let group = group
        Task.detached { await group.triggerGracefulShutdown() }
        ended.wait()
        logger.debug("services stopped")
        if let reason = failed.withLock({ $0 }) { throw ServiceFailure(description: reason) }
    }
}

/// A service of the app ended while the process served.
public struct ServiceFailure: Error, CustomStringConvertible {
    /// What ended it.
    public let description: String
}
