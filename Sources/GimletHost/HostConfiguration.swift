import GimletFastCGI
import GimletHTTP
import GimletSCGI
import GimletTransport
import Logging

/// Everything the host process needs to serve: where, with how many threads,
/// how much body, how much log.
///
/// Fill it from the command line and environment with ``HostOptions``, from
/// the environment alone with ``init(environment:)``, or by hand.
public struct HostConfiguration: Sendable, Equatable {
    /// The FastCGI address; `nil` (and no ``scgi``) serves the socket on fd 0 (spawn-fcgi).
    public var fastcgi: ListenAddress?
    /// The SCGI address; when set, the host speaks SCGI instead of FastCGI.
    public var scgi: ListenAddress?
    /// Worker processes under a supervisor; 0 serves in this process.
    public var workers: Int
    /// Worker threads (per worker process).
    public var threads: Int
    /// What request bodies may be and where large ones go: `--max-body`
    /// (`413` past it), `--body-buffer` (larger bodies are spooled to an
    /// unnamed file), `--body-temp-dir` (where).
    public var bodyLimits: BodyLimits
    /// The largest request body accepted (`413` past it): ``bodyLimits``' `maxBytes`.
    public var maxBodyBytes: Int {
        get { bodyLimits.maxBytes }
        set { bodyLimits.maxBytes = newValue }
    }
    /// Permission bits for a unix socket the host creates; `nil` keeps the umask's.
    public var socketMode: UInt32?
    /// The web servers allowed to connect over TCP (`--allowed-clients`);
    /// required when the socket can be reached from other hosts.
    public var allowedClients: ClientAllowList?
    /// How long a request's head may take to arrive, and the longest pause
    /// in its body (`--read-timeout`); a stalled or trickling peer loses its
    /// connection.
    public var readTimeout: Duration = .seconds(30)
    /// The log level.
    public var logLevel: Logger.Level
    /// A path the host answers `pong` on (`503` while a graceful stop drains), before the app.
    public var pingPath: String?
    /// A path the host answers with its status as JSON (Prometheus text with `?format=prometheus`).
    public var statusPath: String?
    /// A path the host answers with its status in the Prometheus text format.
    public var metricsPath: String?
    /// Requests slower than this are logged with their phases, and while
    /// still running, with the stack of their thread.
    public var slowRequest: Duration?
    /// Async handlers are cancelled (`504`) at this age; under a supervisor,
    /// a worker with a request older than this (plus a second) is killed
    /// and replaced, as is one whose heartbeat stops this long.
    public var requestTimeout: Duration?
    /// Under a supervisor, a worker is replaced after about this many requests.
    public var maxRequests: Int?
    /// On SIGTERM, how long the ping answers `503` while everything is still
    /// served, before the graceful stop: for a load balancer to notice.
    public var drain: Duration = .zero
    /// A file the host appends one line per request to (see the README's
    /// access log format); `-` for standard output; `nil` for none.
    public var accessLog: String?
    /// Whether access log lines carry the query string (off: it may hold tokens).
    public var accessLogQuery = false
    /// How log lines are written: swift-log's text, or one JSON object per line.
    public var logFormat: LogFormat = .text
    /// A file standard error is appended to (`--log-file`); `SIGUSR1` reopens
    /// it and the access log, after logrotate moved them.
    public var logFile: String?

    /// Creates a configuration; every parameter has a safe default.
    public init(
        fastcgi: ListenAddress? = nil, scgi: ListenAddress? = nil, workers: Int = 0,
        threads: Int = FastCGIConfiguration.defaultThreads,
        maxBodyBytes: Int = BodyLimits().maxBytes, socketMode: UInt32? = nil, logLevel: Logger.Level = .info
    ) {
        self.fastcgi = fastcgi
        self.scgi = scgi
        self.workers = workers
        self.threads = threads
        self.bodyLimits = BodyLimits(maxBytes: maxBodyBytes)
        self.socketMode = socketMode
        self.logLevel = logLevel
    }

    /// The SCGI transport's share of the configuration.
    public var scgiConfiguration: SCGIConfiguration {
        var configuration = SCGIConfiguration(listen: scgi ?? .inherited, threads: threads, socketMode: socketMode,
                                              allowedClients: allowedClients, readTimeout: readTimeout)
        configuration.bodyLimits = bodyLimits
        return configuration
    }

    /// Whether any of the operator's tools (status, ping, logs, timeouts, recycling) is on.
    var operations: OperationsSettings {
        OperationsSettings(pingPath: pingPath, statusPath: statusPath, metricsPath: metricsPath,
                           slowRequest: slowRequest, requestTimeout: requestTimeout, maxRequests: maxRequests, drain: drain,
                           accessLog: accessLog, accessLogQuery: accessLogQuery, logFormat: logFormat)
    }

    /// The transport's share of the configuration.
    public var fastCGI: FastCGIConfiguration {
        var configuration = FastCGIConfiguration(
            listen: fastcgi ?? .inherited, threads: threads, socketMode: socketMode,
            allowedClients: allowedClients, readTimeout: readTimeout)
        configuration.bodyLimits = bodyLimits
        return configuration
    }
}

/// A configuration value that could not be read.
public struct HostConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and how to fix it.
    public let message: String

    /// An error saying `message`.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
