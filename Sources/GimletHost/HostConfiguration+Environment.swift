import GimletFastCGI
import GimletTransport
import Logging

extension HostConfiguration {
    /// Reads the configuration from environment variables, defaults for the rest.
    ///
    /// | variable | meaning | example |
    /// | --- | --- | --- |
    /// | `GIMLET_FASTCGI` | FastCGI address | `unix:/run/app/app.sock`, `127.0.0.1:9000` |
    /// | `GIMLET_SCGI` | SCGI address (instead of FastCGI) | `unix:/run/app/app.sock`, `127.0.0.1:4000` |
    /// | `GIMLET_WORKERS` | worker processes under a supervisor | `4` |
    /// | `GIMLET_THREADS` | worker threads (per process) | `8` |
    /// | `GIMLET_MAX_BODY` | largest body in bytes | `1048576` |
    /// | `GIMLET_SOCKET_MODE` | octal mode of the unix socket | `660` |
    /// | `GIMLET_LOG_LEVEL` | `trace` … `critical` | `info` |
    /// | `GIMLET_PING_PATH` | answered `pong` by the host | `/-/ping` |
    /// | `GIMLET_STATUS_PATH` | the status page (JSON; `?format=prometheus`) | `/-/status` |
    /// | `GIMLET_METRICS_PATH` | the status in Prometheus text format | `/-/metrics` |
    /// | `GIMLET_SLOW_REQUEST` | milliseconds past which a request is logged as slow | `2000` |
    /// | `GIMLET_REQUEST_TIMEOUT` | seconds past which a request is cancelled or its worker replaced | `30` |
    /// | `GIMLET_MAX_REQUESTS` | requests after which a worker is replaced (with `--workers`) | `10000` |
    /// | `GIMLET_DRAIN` | seconds the ping answers 503 before a graceful stop | `5` |
    ///
    /// - Throws: ``HostConfigurationError`` naming the variable that is wrong.
    public init(environment: [String: String]) throws {
        self.init()
        try apply(
            fastcgi: environment["GIMLET_FASTCGI"], scgi: environment["GIMLET_SCGI"], workers: environment["GIMLET_WORKERS"],
            threads: environment["GIMLET_THREADS"],
            maxBody: environment["GIMLET_MAX_BODY"], socketMode: environment["GIMLET_SOCKET_MODE"],
            logLevel: environment["GIMLET_LOG_LEVEL"], source: "GIMLET_")
        try applyOperations(
            ping: environment["GIMLET_PING_PATH"], status: environment["GIMLET_STATUS_PATH"],
            metrics: environment["GIMLET_METRICS_PATH"], slowRequest: environment["GIMLET_SLOW_REQUEST"],
            requestTimeout: environment["GIMLET_REQUEST_TIMEOUT"], maxRequests: environment["GIMLET_MAX_REQUESTS"],
            drain: environment["GIMLET_DRAIN"], source: "GIMLET_")
    }

    /// Overrides the operator's settings whose text is given (see ``apply(fastcgi:scgi:workers:threads:maxBody:socketMode:logLevel:source:)``).
    mutating func applyOperations(
        ping: String?, status: String?, metrics: String?, slowRequest: String?, requestTimeout: String?,
        maxRequests: String?, drain: String?, source: String
    ) throws {
        func name(_ key: String) -> String {
            source == "--" ? "--" + key : "GIMLET_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
        }
        func path(_ text: String?, _ key: String) throws -> String? {
            guard let text, !text.isEmpty else { return nil }
            guard text.hasPrefix("/"), !text.contains("?"), !text.contains(" ") else {
                throw HostConfigurationError("\(name(key)) must be a path such as /-/\(key.split(separator: "-").first ?? ""), not \(String(reflecting: text))")
            }
            return text
        }
        func seconds(_ text: String?, _ key: String, unit: Double, range: ClosedRange<Double>, example: String) throws -> Duration? {
            guard let text, !text.isEmpty else { return nil }
            guard let value = Double(text), range.contains(value) else {
                throw HostConfigurationError("\(name(key)) must be a number \(example), not \(String(reflecting: text))")
            }
            return .milliseconds(Int64(value * unit))
        }
        if let value = try path(ping, "ping-path") { pingPath = value }
        if let value = try path(status, "status-path") { statusPath = value }
        if let value = try path(metrics, "metrics-path") { metricsPath = value }
        if let value = try seconds(slowRequest, "slow-request", unit: 1, range: 1...86_400_000, example: "of milliseconds, such as 2000") {
            self.slowRequest = value
        }
        if let value = try seconds(requestTimeout, "request-timeout", unit: 1000, range: 0.1...86_400, example: "of seconds, such as 30") {
            self.requestTimeout = value
        }
        if let value = try seconds(drain, "drain", unit: 1000, range: 0...3600, example: "of seconds, such as 5") {
            self.drain = value
        }
        if let maxRequests, !maxRequests.isEmpty {
            guard let value = Int(maxRequests), value >= 1 else {
                throw HostConfigurationError("\(name("max-requests")) must be a whole number of requests, such as 10000, not \(String(reflecting: maxRequests))")
            }
            self.maxRequests = value
        }
    }

    /// Overrides the fields whose text is given; `source` names where they came
    /// from in error messages (`GIMLET_` for variables, `--` for options).
    mutating func apply(
        fastcgi: String?, scgi: String?, workers: String?, threads: String?, maxBody: String?, socketMode: String?, logLevel: String?,
        source: String
    ) throws {
        func name(_ key: String) -> String {
            source == "--" ? "--" + key : "GIMLET_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
        }
        if let fastcgi, !fastcgi.isEmpty {
            do { self.fastcgi = try ListenAddress(parsing: fastcgi) } catch {
                throw HostConfigurationError("\(name("fastcgi")): \(error)")
            }
        }
        if let scgi, !scgi.isEmpty {
            do { self.scgi = try ListenAddress(parsing: scgi) } catch {
                throw HostConfigurationError("\(name("scgi")): \(error)")
            }
        }
        if self.fastcgi != nil && self.scgi != nil {
            throw HostConfigurationError("both a FastCGI and an SCGI address are set; pick one (--fastcgi or --scgi)")
        }
        if let workers, !workers.isEmpty {
            guard let value = Int(workers), (0...256).contains(value) else {
                throw HostConfigurationError("\(name("workers")) must be a whole number from 0 to 256, not \(String(reflecting: workers))")
            }
            self.workers = value
        }
        if let threads, !threads.isEmpty {
            guard let value = Int(threads), (1...1024).contains(value) else {
                throw HostConfigurationError("\(name("threads")) must be a whole number from 1 to 1024, not \(String(reflecting: threads))")
            }
            self.threads = value
        }
        if let maxBody, !maxBody.isEmpty {
            guard let value = Int(maxBody), value >= 0 else {
                throw HostConfigurationError("\(name("max-body")) must be a number of bytes, not \(String(reflecting: maxBody))")
            }
            self.maxBodyBytes = value
        }
        if let socketMode, !socketMode.isEmpty {
            guard let value = UInt32(socketMode, radix: 8), value <= 0o777 else {
                throw HostConfigurationError("\(name("socket-mode")) must be octal permission bits such as 660, not \(String(reflecting: socketMode))")
            }
            self.socketMode = value
        }
        if let logLevel, !logLevel.isEmpty {
            guard let value = Logger.Level(rawValue: logLevel.lowercased()) else {
                let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw HostConfigurationError("\(name("log-level")) must be one of \(levels), not \(String(reflecting: logLevel))")
            }
            self.logLevel = value
        }
    }
}
