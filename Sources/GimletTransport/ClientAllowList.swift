/// The web servers allowed to connect to a TCP listener, like php-fpm's
/// `listen.allowed_clients`: IPv4 addresses and networks.
///
/// Written as a comma-separated list, `10.0.0.5, 10.0.1.0/24`; the same
/// list libfcgi reads from `FCGI_WEB_SERVER_ADDRS` (addresses only) is
/// accepted. A unix-socket connection is not checked: the socket file's
/// permissions say who may connect.
///
/// ```swift
/// let allowed = try ClientAllowList(parsing: "10.0.0.5,10.0.1.0/24")
/// allowed.allows(ipv4: 0x0A00_0105)   // 10.0.1.5: true
/// ```
public struct ClientAllowList: Sendable, Equatable, CustomStringConvertible {
    /// One allowed network: an address and how many of its leading bits must match.
    struct Network: Sendable, Equatable {
        var address: UInt32
        var prefixLength: Int

        var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength) }

        func contains(_ ipv4: UInt32) -> Bool { ipv4 & mask == address & mask }
    }

    let networks: [Network]

    /// Parses a comma-separated list of IPv4 addresses and `address/length` networks.
    ///
    /// - Throws: ``TransportError`` naming the entry that is not one; an empty list is refused too.
    public init(parsing text: String) throws(TransportError) {
        var networks: [Network] = []
        for raw in text.split(separator: ",") {
            let entry = raw.filter { $0 != " " && $0 != "\t" }
            guard !entry.isEmpty else { continue }
            let parts = entry.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = Self.ipv4(parts[0]) else {
                throw TransportError("\(String(reflecting: String(entry))) is not an IPv4 address or network; write addresses such as 10.0.0.5 or networks such as 10.0.1.0/24, comma-separated")
            }
            var length = 32
            if parts.count == 2 {
                guard let given = Int(parts[1]), (0...32).contains(given) else {
                    throw TransportError("\(String(reflecting: String(entry))): the length after / must be a number from 0 to 32")
                }
                length = given
            }
            networks.append(Network(address: address, prefixLength: length))
        }
        guard !networks.isEmpty else {
            throw TransportError("the list of allowed clients is empty; name the web servers' addresses, such as 10.0.0.5")
        }
        self.networks = networks
    }

    /// Whether a peer at `ipv4` (host byte order) may connect.
    public func allows(ipv4: UInt32) -> Bool { networks.contains { $0.contains(ipv4) } }

    /// The list as it would be written.
    public var description: String {
        networks.map { Self.text($0.address) + ($0.prefixLength == 32 ? "" : "/\($0.prefixLength)") }.joined(separator: ",")
    }

    /// A dotted-quad IPv4 address in host byte order; `nil` if `text` is not one.
    static func ipv4(_ text: Substring) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCII), let number = UInt32(octet), number <= 255
            else { return nil }
            value = value << 8 | number
        }
        return value
    }

    /// `ipv4` (host byte order) as a dotted quad.
    static func text(_ ipv4: UInt32) -> String {
        [ipv4 >> 24, ipv4 >> 16 & 0xFF, ipv4 >> 8 & 0xFF, ipv4 & 0xFF].map { String($0) }.joined(separator: ".")
    }

    /// Whether `ipv4` (host byte order) is a loopback address (127.0.0.0/8).
    static func isLoopback(_ ipv4: UInt32) -> Bool { ipv4 >> 24 == 127 }
}
