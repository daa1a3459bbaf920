import GimletFastCGI
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
    /// The largest request body accepted (`413` past it).
    public var maxBodyBytes: Int
    /// Permission bits for a unix socket the host creates; `nil` keeps the umask's.
    public var socketMode: UInt32?
    /// The log level.
    public var logLevel: Logger.Level

    /// Creates a configuration; every parameter has a safe default.
    public init(
        fastcgi: ListenAddress? = nil, scgi: ListenAddress? = nil, workers: Int = 0,
        threads: Int = FastCGIConfiguration.defaultThreads,
        maxBodyBytes: Int = 1 << 20, socketMode: UInt32? = nil, logLevel: Logger.Level = .info
    ) {
        self.fastcgi = fastcgi
        self.scgi = scgi
        self.workers = workers
        self.threads = threads
        self.maxBodyBytes = maxBodyBytes
        self.socketMode = socketMode
        self.logLevel = logLevel
    }

    /// The SCGI transport's share of the configuration.
    public var scgiConfiguration: SCGIConfiguration {
        SCGIConfiguration(listen: scgi ?? .inherited, threads: threads, maxBodyBytes: maxBodyBytes, socketMode: socketMode)
    }

    /// The transport's share of the configuration.
    public var fastCGI: FastCGIConfiguration {
        FastCGIConfiguration(
            listen: fastcgi ?? .inherited, threads: threads, maxBodyBytes: maxBodyBytes, socketMode: socketMode)
    }
}

/// A configuration value that could not be read.
public struct HostConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and how to fix it.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
