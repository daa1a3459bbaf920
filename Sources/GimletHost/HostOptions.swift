import ArgumentParser
import Logging

/// The host's command-line options, for embedding in an app's own command.
///
/// Each option overrides its environment variable (see
/// ``HostConfiguration/init(environment:)``).
///
/// ```swift
/// @main struct MyApp: ParsableCommand {
///     @OptionGroup var host: HostOptions
///     @Option var greeting = "hello"
///
///     func run() throws {
///         var router = Router()
///         router.get("/") { [greeting] _ in .text(greeting) }
///         try Host(router, configuration: host.configuration()).run()
///     }
/// }
/// ```
public struct HostOptions: ParsableArguments, Sendable {
    /// `--fastcgi` as given (its help text says what it means); `nil` if absent.
    @Option(name: .long, help: ArgumentHelp(
        "Listen for FastCGI on unix:/path.sock or host:port (env GIMLET_FASTCGI). Without it, serve the socket spawn-fcgi left on fd 0.",
        valueName: "address"))
    public var fastcgi: String?

    /// `--scgi` as given (its help text says what it means); `nil` if absent.
    @Option(name: .long, help: ArgumentHelp(
        "Speak SCGI instead, on unix:/path.sock or host:port (env GIMLET_SCGI).", valueName: "address"))
    public var scgi: String?

    /// `--workers` as given (its help text says what it means); `nil` if absent.
    @Option(name: .long, help: ArgumentHelp(
        "Worker processes under a supervisor that restarts them; SIGHUP replaces them one by one (env GIMLET_WORKERS; default 0: serve in this process).",
        valueName: "n"))
    public var workers: String?

    /// `--threads` as given (its help text says what it means); `nil` if absent.
    @Option(name: .long, help: ArgumentHelp(
        "Worker threads per process (env GIMLET_THREADS; default: 2 per core).", valueName: "n"))
    public var threads: String?

    /// `--max-body` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("max-body"), help: ArgumentHelp(
        "Largest request body, in bytes or with k, m, g as nginx's client_max_body_size; larger ones get 413 (env GIMLET_MAX_BODY; default 100m).",
        valueName: "size"))
    public var maxBody: String?

    /// `--body-buffer` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("body-buffer"), help: ArgumentHelp(
        "Largest request body held in memory; a larger one is spooled to an unnamed file in --body-temp-dir, and a larger form or JSON body gets 413 (env GIMLET_BODY_BUFFER; default 1m).",
        valueName: "size"))
    public var bodyBuffer: String?

    /// `--body-temp-dir` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("body-temp-dir"), help: ArgumentHelp(
        "Directory for request bodies larger than --body-buffer: unnamed files (O_TMPFILE, mode 0600) that vanish when their request ends (env GIMLET_BODY_TEMP_DIR; default $TMPDIR, else /tmp).",
        valueName: "path"))
    public var bodyTempDir: String?

    /// `--socket-mode` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("socket-mode"), help: ArgumentHelp(
        "Octal permissions of the unix socket, e.g. 660 (env GIMLET_SOCKET_MODE).", valueName: "mode"))
    public var socketMode: String?

    /// `--log-level` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical (env GIMLET_LOG_LEVEL; default info).",
        valueName: "level"))
    public var logLevel: String?

    /// `--allowed-clients` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("allowed-clients"), help: ArgumentHelp(
        "The web servers allowed to connect over TCP: IPv4 addresses and networks, comma-separated, such as 10.0.0.5,10.0.1.0/24 (env GIMLET_ALLOWED_CLIENTS, else libfcgi's FCGI_WEB_SERVER_ADDRS). Required when the socket listens on an address other hosts can reach.",
        valueName: "addresses"))
    public var allowedClients: String?

    /// `--read-timeout` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("read-timeout"), help: ArgumentHelp(
        "Seconds a request's head may take to arrive, and the longest pause in its body; a peer that stalls or trickles past it loses its connection (env GIMLET_READ_TIMEOUT; default 30).",
        valueName: "seconds"))
    public var readTimeout: String?

    /// `--log-file` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("log-file"), help: ArgumentHelp(
        "Append standard error (log lines, start-up errors) to this file, for spawners that discard it such as spawn-fcgi without -n (env GIMLET_LOG_FILE). SIGUSR1 reopens it.",
        valueName: "path"))
    public var logFile: String?

    /// `--ping-path` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("ping-path"), help: ArgumentHelp(
        "Answer GET PATH with pong (503 while stopping), before the app (env GIMLET_PING_PATH).", valueName: "path"))
    public var pingPath: String?

    /// `--status-path` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("status-path"), help: ArgumentHelp(
        "Answer GET PATH with the status of every worker as JSON, or Prometheus text with ?format=prometheus (env GIMLET_STATUS_PATH). Protect it in nginx with allow/deny.",
        valueName: "path"))
    public var statusPath: String?

    /// `--metrics-path` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("metrics-path"), help: ArgumentHelp(
        "Answer GET PATH with the status in the Prometheus text format (env GIMLET_METRICS_PATH).", valueName: "path"))
    public var metricsPath: String?

    /// `--slow-request` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("slow-request"), help: ArgumentHelp(
        "Log requests slower than this many milliseconds, with their phases, and the thread's stack while still running (env GIMLET_SLOW_REQUEST).",
        valueName: "ms"))
    public var slowRequest: String?

    /// `--request-timeout` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("request-timeout"), help: ArgumentHelp(
        "Cancel async handlers (504) past this many seconds; with --workers, kill and replace a worker stuck past it (env GIMLET_REQUEST_TIMEOUT).",
        valueName: "seconds"))
    public var requestTimeout: String?

    /// `--max-requests` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("max-requests"), help: ArgumentHelp(
        "With --workers, replace a worker after about this many requests, its successor started first (env GIMLET_MAX_REQUESTS).",
        valueName: "n"))
    public var maxRequests: String?

    /// `--drain` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("drain"), help: ArgumentHelp(
        "On SIGTERM, answer the ping with 503 for this many seconds while still serving, then stop (env GIMLET_DRAIN; default 0).",
        valueName: "seconds"))
    public var drain: String?

    /// `--access-log` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("access-log"), help: ArgumentHelp(
        "Append one line per request to this file, - for standard output (env GIMLET_ACCESS_LOG). SIGUSR1 reopens it.",
        valueName: "path"))
    public var accessLog: String?

    /// `--access-log-query` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("access-log-query"), help: ArgumentHelp(
        "yes: access log lines carry the query string, which may hold tokens (env GIMLET_ACCESS_LOG_QUERY; default no).",
        valueName: "yes|no"))
    public var accessLogQuery: String?

    /// `--log-format` as given (its help text says what it means); `nil` if absent.
    @Option(name: .customLong("log-format"), help: ArgumentHelp(
        "text or json, for the access log and every log line (env GIMLET_LOG_FORMAT; default text).",
        valueName: "format"))
    public var logFormat: String?

    /// No options given; ArgumentParser fills them in.
    public init() {}

    /// Called by ArgumentParser once the options are parsed, before the app
    /// runs: with `--log-file` (or `GIMLET_LOG_FILE`), standard error is
    /// pointed at that file here, so that everything the app says from now
    /// on — a missing secret included — reaches a place an operator looks.
    ///
    /// - Throws: ``HostConfigurationError`` if the file cannot be opened.
    public func validate() throws {
        let path = logFile ?? ProcessInfoEnvironment.current["GIMLET_LOG_FILE"]
        guard let path, !path.isEmpty else { return }
        try LogFile.sendStandardError(to: path)
    }

    /// The configuration: defaults, then environment variables, then these options.
    ///
    /// - Throws: ``HostConfigurationError`` naming the variable or option that is wrong.
    public func configuration(
        environment: [String: String] = ProcessInfoEnvironment.current
    ) throws -> HostConfiguration {
        var configuration = try HostConfiguration(environment: environment)
        try configuration.apply(
            fastcgi: fastcgi, scgi: scgi, workers: workers, threads: threads, maxBody: maxBody, socketMode: socketMode,
            logLevel: logLevel, source: "--")
        let given = [
            "ping-path": pingPath, "status-path": statusPath, "metrics-path": metricsPath, "slow-request": slowRequest,
            "request-timeout": requestTimeout, "max-requests": maxRequests, "drain": drain, "access-log": accessLog,
            "access-log-query": accessLogQuery, "log-format": logFormat, "log-file": logFile,
            "allowed-clients": allowedClients, "read-timeout": readTimeout,
            "body-buffer": bodyBuffer, "body-temp-dir": bodyTempDir,
        ]
        try configuration.applyOperations(source: "--") { given[$0] ?? nil }
        if configuration.maxRequests != nil, configuration.workers == 0 {
            throw HostConfigurationError("--max-requests needs --workers: a worker that ends needs a supervisor to replace it")
        }
        return configuration
    }
}
