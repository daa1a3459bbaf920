/// Where a transport listens.
///
/// Written on the command line as `unix:/run/app.sock` (or just an absolute
/// path), `127.0.0.1:9000`, or `:9000` for the same on loopback. Other hosts
/// can connect only to an address named explicitly (`10.0.0.2:9000`,
/// `0.0.0.0:9000` for every interface), which needs an allow-list of web
/// servers (``ClientAllowList``).
///
/// ```swift
/// let address = try ListenAddress(parsing: "unix:/run/gimlet/app.sock")
/// ```
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// A unix-domain socket at `path`.
    case unix(path: String)
    /// A TCP socket on an IPv4 address (`0.0.0.0`: every interface).
    case tcp(host: String, port: Int)
    /// The listening socket on file descriptor 0, as spawn-fcgi passes it.
    case inherited

    /// The longest unix socket path the kernel accepts (`sun_path` less its NUL).
    static let maximumUnixPathLength = 107

    /// Parses an address.
    ///
    /// - Throws: ``TransportError`` saying which forms are accepted.
    public init(parsing text: String) throws(TransportError) {
        let forms = "use unix:/path/to.sock, 127.0.0.1:9000 or :9000 (loopback)"
        if text.hasPrefix("unix:") || text.hasPrefix("/") {
            let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            guard !path.isEmpty else { throw TransportError("empty unix socket path in \(String(reflecting: text)); \(forms)") }
            guard !path.contains(":") else {
                throw TransportError("unix socket path \(String(reflecting: path)) contains ':', which libfcgi reads as host:port; pick another path")
            }
            guard path.utf8.count <= Self.maximumUnixPathLength else {
                throw TransportError("unix socket path \(String(reflecting: path)) is longer than \(Self.maximumUnixPathLength) bytes; pick a shorter one")
            }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw TransportError("cannot read listen address \(String(reflecting: text)); \(forms)")
        }
        let host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else {
            throw TransportError("port in \(String(reflecting: text)) is not a number from 1 to 65535; \(forms)")
        }
        guard !host.contains(":"), !host.contains("[") else {
            throw TransportError("IPv6 address \(String(reflecting: text)) is not supported by libfcgi; use an IPv4 address or a unix socket")
        }
        // A bare port is loopback: reaching other hosts is said explicitly.
        self = .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }

    /// The address as written on the command line (`unix:/run/app.sock`, `127.0.0.1:9000`).
    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): "\(host):\(port)"
        case .inherited: "the socket on fd 0"
        }
    }
}
