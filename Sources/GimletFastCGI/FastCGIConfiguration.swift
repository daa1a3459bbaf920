import GimletHTTP
import GimletTransport
/// How the FastCGI transport listens and reads requests.
///
/// ```swift
/// var configuration = FastCGIConfiguration(listen: .unix(path: "/run/app.sock"))
/// configuration.threads = 8
/// ```
public struct FastCGIConfiguration: Sendable, Equatable {
    /// Where to listen; `ListenAddress.inherited` serves the socket spawn-fcgi left on fd 0.
    public var listen: ListenAddress
    /// Worker threads, each handling one request at a time.
    public var threads: Int
    /// What request bodies may be, and where large ones are kept (see
    /// `BodyLimits` of GimletHTTP): `--max-body`, `--body-buffer`, `--body-temp-dir`.
    public var bodyLimits: BodyLimits
    /// The largest request body accepted (``bodyLimits``' `maxBytes`); larger ones get `413`.
    public var maxBodyBytes: Int {
        get { bodyLimits.maxBytes }
        set { bodyLimits.maxBytes = newValue }
    }
    /// Permission bits for a unix socket this process creates (for example
    /// `0o660` so the web server's group can connect); `nil` leaves the umask's.
    public var socketMode: UInt32?
    /// The listen backlog.
    public var backlog: Int
    /// The web servers allowed to connect over TCP. Required when the
    /// listener can be reached from other hosts (an address that is not
    /// loopback, `0.0.0.0` included); the server refuses to start without it.
    public var allowedClients: ClientAllowList?
    /// How long a request's params may take to arrive, and the longest
    /// pause in its body; a peer that stalls or trickles past it loses its
    /// connection.
    public var readTimeout: Duration

    /// The default thread count: two per core, so a thread blocked on a
    /// backend does not idle a core.
    public static var defaultThreads: Int { defaultWorkerThreads() }

    /// Creates a configuration; every parameter has a safe default.
    public init(
        listen: ListenAddress = .inherited, threads: Int = FastCGIConfiguration.defaultThreads,
        maxBodyBytes: Int = BodyLimits().maxBytes, socketMode: UInt32? = nil, backlog: Int = 1024,
        allowedClients: ClientAllowList? = nil, readTimeout: Duration = .seconds(30)
    ) {
        self.listen = listen
        self.threads = threads
        self.bodyLimits = BodyLimits(maxBytes: maxBodyBytes)
        self.socketMode = socketMode
        self.backlog = backlog
        self.allowedClients = allowedClients
        self.readTimeout = readTimeout
    }
}
