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
    ///
    /// - Throws: ``HostConfigurationError`` naming the variable that is wrong.
    public init(environment: [String: String]) throws {
        self.init()
        try apply(
            fastcgi: environment["GIMLET_FASTCGI"], scgi: environment["GIMLET_SCGI"], workers: environment["GIMLET_WORKERS"],
            threads: environment["GIMLET_THREADS"],
            maxBody: environment["GIMLET_MAX_BODY"], socketMode: environment["GIMLET_SOCKET_MODE"],
            logLevel: environment["GIMLET_LOG_LEVEL"], source: "GIMLET_")
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
