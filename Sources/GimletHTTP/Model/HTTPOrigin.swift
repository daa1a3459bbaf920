/// A web origin, the scheme, host and port that browsers compare (RFC 6454)
/// and send in the `Origin` header.
///
/// Two origins are equal when their scheme, host (case-insensitively) and
/// port are; a missing port is the scheme's default, so `http://example.com`
/// equals `http://example.com:80`.
///
/// ```swift
/// HTTPOrigin("https://Example.com:443") == HTTPOrigin("https://example.com")   // true
/// request.origin?.description   // "http://127.0.0.1:8080"
/// ```
public struct HTTPOrigin: Hashable, Sendable, CustomStringConvertible {
    /// `http` or `https` (or another scheme), lower-cased.
    public let scheme: String
    /// The host, lower-cased; an IPv6 address keeps its brackets.
    public let host: String
    /// The port, the scheme's default when none was written.
    public let port: Int

    /// Parses a serialized origin, `scheme://host[:port]` (a trailing `/` is
    /// allowed, as some configurations write it); `nil` for anything else,
    /// including the opaque origin `null`.
    public init?(_ serialized: String) {
        guard let separator = serialized.firstRange(of: "://") else { return nil }
        let scheme = serialized[..<separator.lowerBound].lowercased()
        var authority = serialized[separator.upperBound...]
        if authority.last == "/" { authority = authority.dropLast() }
        guard !scheme.isEmpty, scheme.utf8.allSatisfy(Self.isSchemeByte),
              !authority.contains("/"), !authority.contains("@"),
              let (host, port) = Self.split(authority: authority)
        else { return nil }
        guard let resolved = port ?? Self.defaultPort(of: scheme) else { return nil }
        self.init(scheme: scheme, host: host, port: resolved)
    }

    /// An origin from its parts; `host` is lower-cased.
    public init(scheme: String, host: String, port: Int) {
        self.scheme = scheme.lowercased()
        self.host = host.lowercased()
        self.port = port
    }

    /// `scheme://host`, with `:port` unless it is the scheme's default.
    public var description: String {
        port == Self.defaultPort(of: scheme) ? "\(scheme)://\(host)" : "\(scheme)://\(host):\(port)"
    }

    /// 80 for http, 443 for https.
    static func defaultPort(of scheme: String) -> Int? {
        switch scheme {
        case "http", "ws": 80
        case "https", "wss": 443
        default: nil
        }
    }

    /// `host` and the port if one is written, from `host`, `host:port`,
    /// `[v6]` or `[v6]:port`; `nil` if malformed.
    static func split(authority: Substring) -> (host: String, port: Int?)? {
        guard !authority.isEmpty else { return nil }
        var host = authority
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        // Brackets and colons only in a bracketed IPv6 literal, whose inside is hex digits, `:` and `.`.
        if host.first == "[" {
            guard host.count > 2, host.dropFirst().dropLast().utf8.allSatisfy(Self.isIPv6Byte) else { return nil }
        } else {
            guard !host.isEmpty, host.utf8.allSatisfy(Self.isNameByte) else { return nil }
        }
        guard let portText else { return (host.lowercased(), nil) }
        guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let port = Int(portText), port <= 65_535
        else { return nil }
        return (host.lowercased(), port)
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    /// Letters, digits and the punctuation of DNS names and IPv4 addresses.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
    }

    /// What an IPv6 literal holds between its brackets.
    private static func isIPv6Byte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x30 && byte <= 0x39)
            || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
    }
}

extension Request {
    /// The origin this request was addressed to, derived from what the web
    /// server passes:
    ///
    /// - the scheme is `https` when ``isSecure`` (`HTTPS` on, or
    ///   `REQUEST_SCHEME=https`), else `http`;
    /// - the host is `HTTP_HOST` (else `SERVER_NAME`);
    /// - the port is the one in `HTTP_HOST` when it carries one (upstream
    ///   nginx's and Apache's `Host` as sent), else `SERVER_PORT` (Debian's
    ///   stock `fastcgi_params`/`scgi_params` pass `$host`, which drops the
    ///   port), else the scheme's default.
    ///
    /// Where the web server cannot know the public origin (a TLS-terminating
    /// proxy in front of plain-HTTP nginx, a port mapping), it differs from
    /// what the browser used; configure the public origin explicitly then
    /// (`SessionConfiguration.publicOrigins`).
    public var origin: HTTPOrigin? {
        let scheme = isSecure ? "https" : "http"
        let hostHeader = environ["HTTP_HOST"].flatMap { $0.isEmpty ? nil : $0 }
        let serverName = environ["SERVER_NAME"].flatMap { $0.isEmpty || $0 == "_" ? nil : $0 }
        guard let authority = hostHeader ?? serverName, let (host, port) = HTTPOrigin.split(authority: authority[...])
        else { return nil }
        let serverPort = environ["SERVER_PORT"].flatMap { Int($0) }.flatMap { (1...65_535).contains($0) ? $0 : nil }
        guard let resolved = port ?? serverPort ?? HTTPOrigin.defaultPort(of: scheme) else { return nil }
        return HTTPOrigin(scheme: scheme, host: host, port: resolved)
    }
}
