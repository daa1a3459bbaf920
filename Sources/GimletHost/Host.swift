import ArgumentParser
import Dispatch
import Foundation
import GimletFastCGI
import GimletSCGI
@_spi(GimletInlined) import GimletSystem
import GimletTransport
import GimletHTTP
import Logging
import Synchronization

/// The application-server process: it serves a responder over FastCGI (or SCGI) with
/// worker threads, and stops cleanly on SIGTERM or SIGINT (no new requests,
/// in-flight ones finish, exit status 0).
///
/// The shortest app:
///
/// ```swift
/// var router = Router()
/// router.get("/") { _ in .text("hello") }
/// Host.main(router)     // reads --fastcgi, --threads, … and GIMLET_* variables
/// ```
///
/// An app with options of its own embeds ``HostOptions`` in its command and
/// calls ``run(configuration:_:)``, which builds the responder (and opens its
/// session backend) only in a process that serves requests: under
/// `--workers`, in each worker, never in the supervisor.
public struct Host: Sendable {
    /// What answers the requests.
    public let responder: any Responder
    /// How to serve.
    public let configuration: HostConfiguration

    /// Creates a host for `responder`.
    public init(_ responder: some Responder, configuration: HostConfiguration) {
        self.responder = responder
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT, then returns once in-flight requests
    /// have finished and the responder has shut down (`HostLifecycle.shutdown()`).
    ///
    /// - Throws: the responder's configuration error, or a `TransportError` if
    ///   the socket cannot be opened — before any request is accepted.
    public func run() throws {
        try responder.validate()
        try Self.serve(configuration) { _ in responder }
    }

    /// Serves the responder `makeResponder` builds, as ``run()`` does; it is
    /// called only in a process that serves requests (not in a supervisor
    /// of `--workers`), so only those open session backends and start their
    /// background work. It is given the host's logger (its level and
    /// format, the worker's pid), for the backends and anything else the
    /// app builds that logs.
    ///
    /// ```swift
    /// try Host.run(configuration: try options.configuration()) { logger in
    ///     var router = Router()
    ///     router.use(try SessionMiddleware(SessionConfiguration(
    ///         environment: ProcessInfo.processInfo.environment,
    ///         backends: SessionBackends(.sqlite, logger: logger))))
    ///     return router
    /// }
    /// ```
    ///
    /// - Throws: what `makeResponder` throws, the responder's configuration
    ///   error, or a `TransportError` — before any request is accepted.
    ///   Under `--workers`, a worker that cannot build its responder exits
    ///   with the error, and the supervisor exits 1 saying so. After
    ///   serving: ``ServiceFailure`` if a service of a ``ServingApp`` ended
    ///   early (its one log line is written).
    public static func run(configuration: HostConfiguration, _ makeResponder: (Logger) throws -> some Responder) throws {
        try serve(configuration) { logger in
            let responder = try makeResponder(logger)
            try responder.validate()
            return responder
        }
    }

    private static func serve(_ configuration: HostConfiguration, _ makeResponder: (Logger) throws -> any Responder) throws {
        // Before any thread is made: SIGTERM, SIGINT, SIGHUP and SIGUSR1 are
        // blocked and taken by one thread, so one sent while the app starts
        // (opening its backends, say) waits for its handler instead of being lost.
        ProcessSignals.takeOver()
        // The host's own handler, not swift-log's global bootstrap: that is
        // the app's to make (once per process), and a second one would crash.
        let format = configuration.logFormat
        var logger = Logger(label: "gimlet") { HostLogHandler(label: $0, format: format) }
        logger.logLevel = configuration.logLevel
        var configuration = configuration
        let environment = ProcessInfo.processInfo.environment
        let supervised = Supervisor.isWorker(environment)
        if supervised {
            // Started by a supervisor: serve the socket it passed on fd 0.
            configuration.transport = configuration.transport.inherited
            configuration.workers = 0
            logger[metadataKey: "worker"] = "\(SystemCall.processID)"
        }
        // Every open stream (server-sent events) holds a descriptor: as many as the hard limit allows.
        let files = SystemCall.raiseOpenFileLimit()
        if files.after > files.before {
            logger.debug("open-file limit raised to the hard limit", metadata: ["before": "\(files.before)", "after": "\(files.after)"])
        }
        let operations = configuration.operations
        if configuration.workers > 0 {
            try supervise(configuration, logger: logger)
            return
        }
        let (responder, services) = ServingApp.split(try makeResponder(logger))
        // After the last request: the responder's background work stops.
        defer { responder.shutdown() }
        let process = try ServingProcess(configuration: configuration, responder: responder, environment: environment,
                                         supervised: supervised, logger: logger)
        defer { process.close() }
        // The app's services (ServingApp): running before the first request,
        // finished after the last one and before the backends shut down.
        let runner = services.isEmpty ? nil : ServiceRunner(services: services, logger: logger)
        let (server, monitor, watchdog) = (process.server, process.monitor, process.watchdog)
        // A parent may have left it blocked (a test runner, a shell's
        // background job): a blocked stack-capture signal would leave the
        // logs without stacks. Worker threads, made after this, inherit the mask.
        ProcessSignals.unblock([StackCapture.signalNumber])
        // A supervisor drains before it signals its workers; a lone process drains itself.
        let drain = supervised ? Duration.zero : operations.drain
        let sources = [SIGTERM, SIGINT].map { number in
            ProcessSignals.handle(number) { [monitor, logger] in
                monitor?.scoreboard.isDraining = true
                guard drain > .zero else {
                    logger.info("signal \(number): stopping after in-flight requests")
                    server.stop()
                    return
                }
                logger.info("signal \(number): the ping answers 503 for \(Watchdog.format(drain.seconds)) s, then stopping after in-flight requests")
                DispatchQueue.global().asyncAfter(deadline: .now() + drain.seconds) { server.stop() }
            }
        }
        let reopening = Self.reopenLogsOnSIGUSR1(accessLog: process.accessLog, logFile: configuration.logFile, logger: logger)
        let reloading = Self.reloadOnSIGHUP(process.served, logger: logger)
        watchdog?.start()
        Self.prepareTimers()
        if let monitor { monitor.scoreboard.setState(monitor.slot, .serving) }
        runner?.start { server.stop() }
        // Router, configuration and socket are fine: a supervisor may now stop the worker this one replaces.
        ProcessCalls.announceReady(environment: environment)
        server.run()
        watchdog?.stop()
        sources.forEach { $0.cancel() }
        reopening.cancel()
        reloading.cancel()
        try runner?.stop()
    }

    /// Makes libdispatch's event loop and its timers now, before the first
    /// request. libdispatch makes its epoll set and eventfd the first time a
    /// timer needs them (an async handler's first `Task.sleep`, a stream's
    /// pause) and ends the process with `SIGILL` if it cannot then
    /// (`epoll_create1() failed`); at the open-file limit it could not, and
    /// a timer whose `timerfd` it cannot make never fires. One timer on each
    /// of its clocks (monotonic, wall) and one sleep on each of Swift's
    /// (continuous, suspending) make them all here, where descriptors are free.
    static func prepareTimers() {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(1)) { done.signal() }
        DispatchQueue.global().asyncAfter(wallDeadline: .now() + .milliseconds(1)) { done.signal() }
        Task.detached {
            try? await Task.sleep(for: .milliseconds(1), clock: .continuous)
            try? await Task.sleep(for: .milliseconds(1), clock: .suspending)
            done.signal()
        }
        for _ in 0..<3 { done.wait() }
    }

    /// `SIGHUP` to a process serving by itself (no `--workers`): the
    /// responder re-reads its files (secrets after a rotation), in place,
    /// without a restart. A failure is logged and the old keys stay.
    static func reloadOnSIGHUP(_ responder: any Responder, logger: Logger) -> SignalHandler {
        ProcessSignals.handle(SIGHUP) {
            do {
                try responder.reload()
                logger.notice("SIGHUP: reloaded (the files the app reads, such as GIMLET_SECRET_FILE, if it has any)")
            } catch {
                logger.error("SIGHUP: reload failed, the keys in use stay: \(error)")
            }
        }
    }

    /// `SIGUSR1` reopens the access log and the `--log-file` (logrotate's
    /// `postrotate`, as nginx and php-fpm do it).
    static func reopenLogsOnSIGUSR1(accessLog: AccessLog?, logFile: String?, logger: Logger) -> SignalHandler {
        ProcessSignals.handle(SIGUSR1) {
            do {
                if let logFile { try LogFile.sendStandardError(to: logFile) }
                accessLog?.flush()  // the lines so far belong in the file being rotated away
                try accessLog?.file.reopen()
                logger.info("SIGUSR1: log files reopened")
            } catch {
                logger.error("SIGUSR1: \(error); logging goes on to the file already open")
            }
        }
    }

    /// Opens the socket and runs the supervisor of `configuration.workers` worker processes.
    private static func supervise(_ configuration: HostConfiguration, logger: Logger) throws {
        let address = configuration.transport.address
        let listener = try ListeningSocket.open(address, backlog: 1024, socketMode: configuration.socketMode)
        let owned: OwnedSocketFile? = if case .unix(let path) = address { OwnedSocketFile(path: path) } else { nil }
        defer {
            SocketCalls.close(listener)
            owned?.remove()
        }
        // Checked here too, so a socket open to strangers stops the start
        // with one line rather than every worker failing in turn.
        try ListeningSocket.requireAllowList(for: listener, allowed: configuration.allowedClients)
        logger.info("listening", metadata: ["address": "\(address)", "protocol": "\(configuration.transport.protocolName)"])
        let operations = configuration.operations
        // Room for every worker twice over: a reload runs old and new side by side.
        let scoreboard = operations.isOn
            ? try Scoreboard(processes: 2 * configuration.workers + 1, threads: configuration.threads) : nil
        try Supervisor(count: configuration.workers, logger: logger, scoreboard: scoreboard, settings: operations,
                       logFile: configuration.logFile)
            .run(listener: listener)
    }

    /// This version of Gimlet.
    public static let version = "0.2.0"

    /// Parses the host options from the command line and environment, serves
    /// `responder`, and exits: 0 after a clean stop, non-zero with a one-line
    /// explanation if it cannot start.
    ///
    /// - Parameters:
    ///   - responder: what answers the requests, usually a `Router`.
    ///   - version: what `--version` prints; Gimlet's version by default.
    ///   - arguments: the command line without the program name; the process's by default.
    public static func main(_ responder: some Responder, version: String? = nil, arguments: [String]? = nil) -> Never {
        main(version: version, arguments: arguments) { _, _ in responder }
    }

    /// The closure form of `main`, for a responder that needs only the environment.
    public static func main(
        version: String? = nil, arguments: [String]? = nil,
        _ makeResponder: ([String: String]) throws -> some Responder
    ) -> Never {
        main(version: version, arguments: arguments) { environment, _ in try makeResponder(environment) }
    }

    /// Parses the host options, then builds the responder with `makeResponder`
    /// (given the process environment and the host's logger, for what the
    /// app builds that logs), serves it, and exits. Any error the closure
    /// throws — a missing secret, a bad backend URL — ends the process with
    /// one line on standard error and exit status 1, never a crash.
    ///
    /// ```swift
    /// Host.main { environment, logger in
    ///     var router = Router()
    ///     router.use(try SessionMiddleware(SessionConfiguration(
    ///         environment: environment, backends: SessionBackends(.sqlite, logger: logger))))
    ///     router.get("/") { request in .text("hello") }
    ///     return router
    /// }
    /// ```
    public static func main(
        version: String? = nil, arguments: [String]? = nil,
        _ makeResponder: ([String: String], Logger) throws -> some Responder
    ) -> Never {
        HostCommand.appVersion.withLock { $0 = version }
        let options: HostOptions
        do {
            options = try HostCommand.parse(arguments).options
        } catch {
            // --help, --version and usage errors: ArgumentParser prints and picks the status.
            HostCommand.exit(withError: error)
        }
        do {
            let configuration = try options.configuration()
            try Host.run(configuration: configuration) { logger in try makeResponder(ProcessInfoEnvironment.current, logger) }
            exit(0)
        } catch is ServiceFailure {
            exit(1)  // the one line saying why is in the log already
        } catch {
            fail("\(error)")
        }
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(1)
    }

}

/// The process environment as it is now (read anew each time).
public enum ProcessInfoEnvironment {
    /// `ProcessInfo.processInfo.environment`.
    public static var current: [String: String] { ProcessInfo.processInfo.environment }
}

/// The command line of ``Host/main(_:version:arguments:)``: the host options,
/// under the executable's own name, with `--version`.
struct HostCommand: ParsableCommand {
    /// What `--version` prints, set by `Host.main` before parsing.
    static let appVersion = Mutex<String?>(nil)

    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "app",
            version: appVersion.withLock { $0 } ?? "Gimlet \(Host.version)")
    }

    @OptionGroup var options: HostOptions

    init() {}
}
