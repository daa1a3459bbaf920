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
    /// The protocol the host speaks and where it listens: FastCGI on the
    /// socket on fd 0 (spawn-fcgi's) unless told otherwise.
    public var transport: Transport
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
        transport: Transport = .fastCGI(.inherited), workers: Int = 0,
        threads: Int = FastCGIConfiguration.defaultThreads,
        maxBodyBytes: Int = BodyLimits().maxBytes, socketMode: UInt32? = nil, logLevel: Logger.Level = .info
    ) {
        self.transport = transport
        self.workers = workers
        self.threads = threads
        self.bodyLimits = BodyLimits(maxBytes: maxBodyBytes)
        self.socketMode = socketMode
        self.logLevel = logLevel
    }

    /// The SCGI transport's share of the configuration.
    public var scgiConfiguration: SCGIConfiguration {
        var configuration = SCGIConfiguration(listen: transport.address, threads: threads, socketMode: socketMode,
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
            listen: transport.address, threads: threads, socketMode: socketMode,
            allowedClients: allowedClients, readTimeout: readTimeout)
        configuration.bodyLimits = bodyLimits
        return configuration
    }
}

/// The protocol the host speaks to the web server, and where it listens.
public enum Transport: Sendable, Equatable {
    /// FastCGI (`fastcgi_pass`, `mod_proxy_fcgi`) on `address`;
    /// `.inherited` serves the socket on fd 0, as spawn-fcgi leaves it.
    case fastCGI(ListenAddress)
    /// SCGI (`scgi_pass`, `mod_proxy_scgi`) on `address`.
    case scgi(ListenAddress)

    /// Where it listens.
    public var address: ListenAddress {
        switch self {
        case .fastCGI(let address), .scgi(let address): address
        }
    }

    /// The same protocol on the socket a supervisor passed on fd 0.
    var inherited: Transport {
        switch self {
        case .fastCGI: .fastCGI(.inherited)
        case .scgi: .scgi(.inherited)
        }
    }

    /// `FastCGI` or `SCGI`, for log lines.
    var protocolName: String {
        switch self {
        case .fastCGI: "FastCGI"
        case .scgi: "SCGI"
        }
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
