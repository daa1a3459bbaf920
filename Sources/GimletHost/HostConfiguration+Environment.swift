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
    /// | `GIMLET_MAX_BODY` | largest request body, in bytes or with k, m, g | `100m` |
    /// | `GIMLET_BODY_BUFFER` | largest body held in memory; larger ones are spooled to a file | `1m` |
    /// | `GIMLET_BODY_TEMP_DIR` | where spooled bodies go (unnamed files) | `/var/tmp` |
    /// | `GIMLET_SOCKET_MODE` | octal mode of the unix socket | `660` |
    /// | `GIMLET_LOG_LEVEL` | `trace` … `critical` | `info` |
    /// | `GIMLET_PING_PATH` | answered `pong` by the host | `/-/ping` |
    /// | `GIMLET_STATUS_PATH` | the status page (JSON; `?format=prometheus`) | `/-/status` |
    /// | `GIMLET_METRICS_PATH` | the status in Prometheus text format | `/-/metrics` |
    /// | `GIMLET_SLOW_REQUEST` | milliseconds past which a request is logged as slow | `2000` |
    /// | `GIMLET_REQUEST_TIMEOUT` | seconds past which a request is cancelled or its worker replaced | `30` |
    /// | `GIMLET_MAX_REQUESTS` | requests after which a worker is replaced (with `--workers`) | `10000` |
    /// | `GIMLET_DRAIN` | seconds the ping answers 503 before a graceful stop | `5` |
    /// | `GIMLET_ACCESS_LOG` | a file to append one line per request to; `-` for standard output | `/var/log/app/access.log` |
    /// | `GIMLET_ACCESS_LOG_QUERY` | `yes`: access log lines carry the query string | `no` |
    /// | `GIMLET_LOG_FORMAT` | `text` or `json`, for the access log and every log line | `json` |
    /// | `GIMLET_LOG_FILE` | a file standard error (the log) is appended to | `/var/log/app/app.log` |
    /// | `GIMLET_ALLOWED_CLIENTS` | web servers allowed to connect over TCP (else `FCGI_WEB_SERVER_ADDRS`) | `10.0.0.5,10.0.1.0/24` |
    /// | `GIMLET_READ_TIMEOUT` | seconds a request's head may take to arrive, and the longest pause in its body | `30` |
    ///
    /// - Throws: ``HostConfigurationError`` naming the variable that is wrong.
    public init(environment: [String: String]) throws {
        self.init()
        try apply(
            fastcgi: environment["GIMLET_FASTCGI"], scgi: environment["GIMLET_SCGI"], workers: environment["GIMLET_WORKERS"],
            threads: environment["GIMLET_THREADS"],
            maxBody: environment["GIMLET_MAX_BODY"], socketMode: environment["GIMLET_SOCKET_MODE"],
            logLevel: environment["GIMLET_LOG_LEVEL"], source: "GIMLET_")
        try applyOperations(source: "GIMLET_") { environment[Self.variable(for: $0)] }
        // libfcgi's own variable, as php-cgi and other FastCGI apps read it.
        if allowedClients == nil, let addresses = environment["FCGI_WEB_SERVER_ADDRS"], !addresses.isEmpty {
            do { allowedClients = try ClientAllowList(parsing: addresses) } catch {
                throw HostConfigurationError("FCGI_WEB_SERVER_ADDRS: \(error)")
            }
        }
    }

    /// The environment variable of option `--key`: `GIMLET_KEY`, dashes as underscores.
    static func variable(for key: String) -> String {
        "GIMLET_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Overrides the operator's settings (the options from `--ping-path` on,
    /// ``OperationsSettings``) whose text `value(optionName)` gives; `source`
    /// names where they came from in error messages (`GIMLET_` or `--`).
    mutating func applyOperations(source: String, _ value: (String) -> String?) throws {
        func name(_ key: String) -> String { source == "--" ? "--" + key : Self.variable(for: key) }
        func path(_ key: String) throws -> String? {
            guard let text = value(key), !text.isEmpty else { return nil }
            guard text.hasPrefix("/"), !text.contains("?"), !text.contains(" ") else {
                throw HostConfigurationError("\(name(key)) must be a path such as /-/\(key.split(separator: "-").first ?? ""), not \(String(reflecting: text))")
            }
            return text
        }
        func seconds(_ key: String, unit: Double, range: ClosedRange<Double>, example: String) throws -> Duration? {
            guard let text = value(key), !text.isEmpty else { return nil }
            guard let number = Double(text), range.contains(number) else {
                throw HostConfigurationError("\(name(key)) must be a number \(example), not \(String(reflecting: text))")
            }
            return .milliseconds(Int64(number * unit))
        }
        if let path = try path("ping-path") { pingPath = path }
        if let path = try path("status-path") { statusPath = path }
        if let path = try path("metrics-path") { metricsPath = path }
        if let duration = try seconds("slow-request", unit: 1, range: 1...86_400_000, example: "of milliseconds, such as 2000") {
            slowRequest = duration
        }
        if let duration = try seconds("request-timeout", unit: 1000, range: 0.1...86_400, example: "of seconds, such as 30") {
            requestTimeout = duration
        }
        if let duration = try seconds("drain", unit: 1000, range: 0...3600, example: "of seconds, such as 5") {
            drain = duration
        }
        if let text = value("max-requests"), !text.isEmpty {
            guard let number = Int(text), number >= 1 else {
                throw HostConfigurationError("\(name("max-requests")) must be a whole number of requests, such as 10000, not \(String(reflecting: text))")
            }
            maxRequests = number
        }
        if let text = value("access-log"), !text.isEmpty { accessLog = text }
        if let text = value("access-log-query"), !text.isEmpty {
            switch text.lowercased() {
            case "1", "yes", "true", "on": accessLogQuery = true
            case "0", "no", "false", "off": accessLogQuery = false
            default: throw HostConfigurationError("\(name("access-log-query")) must be yes or no, not \(String(reflecting: text))")
            }
        }
        if let text = value("log-format"), !text.isEmpty {
            guard let format = LogFormat(rawValue: text.lowercased()) else {
                throw HostConfigurationError("\(name("log-format")) must be text or json, not \(String(reflecting: text))")
            }
            logFormat = format
        }
        if let text = value("log-file"), !text.isEmpty { logFile = text }
        if let text = value("allowed-clients"), !text.isEmpty {
            do { allowedClients = try ClientAllowList(parsing: text) } catch {
                throw HostConfigurationError("\(name("allowed-clients")): \(error)")
            }
        }
        if let duration = try seconds("read-timeout", unit: 1000, range: 0.1...86_400, example: "of seconds, such as 30") {
            readTimeout = duration
        }
        if let text = value("body-buffer"), !text.isEmpty {
            guard let size = Self.byteSize(text) else {
                throw HostConfigurationError("\(name("body-buffer")) must be a number of bytes, or of k, m or g (such as 1m), not \(String(reflecting: text))")
            }
            bodyLimits.memoryBytes = size
        }
        if let text = value("body-temp-dir"), !text.isEmpty {
            guard text.hasPrefix("/") else {
                throw HostConfigurationError("\(name("body-temp-dir")) must be an absolute directory path, not \(String(reflecting: text))")
            }
            bodyLimits.temporaryDirectory = text
        }
    }

    /// A size as nginx writes one: bytes, or a whole number of `k`, `m` or `g`
    /// (binary units, either case); `nil` for anything else or past 2^50 bytes.
    static func byteSize(_ text: String) -> Int? {
        var digits = Substring(text)
        var unit = 1
        switch digits.last {
        case "k", "K": unit = 1 << 10
        case "m", "M": unit = 1 << 20
        case "g", "G": unit = 1 << 30
        default: break
        }
        if unit != 1 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 16, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let number = Int(digits), number <= (1 << 50) / unit
        else { return nil }
        return number * unit
    }

    /// Overrides the fields whose text is given; `source` names where they came
    /// from in error messages (`GIMLET_` for variables, `--` for options).
    mutating func apply(
        fastcgi: String?, scgi: String?, workers: String?, threads: String?, maxBody: String?, socketMode: String?, logLevel: String?,
        source: String
    ) throws {
        func name(_ key: String) -> String { source == "--" ? "--" + key : Self.variable(for: key) }
        // One source names one transport; a later source (options after
        // variables) replaces what an earlier one named.
        let fastcgi = fastcgi.flatMap { $0.isEmpty ? nil : $0 }, scgi = scgi.flatMap { $0.isEmpty ? nil : $0 }
        if fastcgi != nil && scgi != nil {
            throw HostConfigurationError("both \(name("fastcgi")) and \(name("scgi")) are set; pick one")
        }
        if let fastcgi {
            do { transport = .fastCGI(try ListenAddress(parsing: fastcgi)) } catch {
                throw HostConfigurationError("\(name("fastcgi")): \(error)")
            }
        }
        if let scgi {
            do { transport = .scgi(try ListenAddress(parsing: scgi)) } catch {
                throw HostConfigurationError("\(name("scgi")): \(error)")
            }
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
            guard let value = Self.byteSize(maxBody) else {
                throw HostConfigurationError("\(name("max-body")) must be a number of bytes, or of k, m or g (as nginx's client_max_body_size: 100m), not \(String(reflecting: maxBody))")
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
