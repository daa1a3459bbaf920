import Foundation

/// A raw TCP or unix-socket client for protocol-level tests: send exact bytes, read what comes back.
final class RawClient {
    private let fd: Int32

    /// Connects to a unix socket.
    init(unixPath: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(unixPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SetupError("socket path too long: \(unixPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        fd = try Self.connect(AF_UNIX, to: address, describedAs: unixPath)
    }

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        fd = try Self.connect(AF_INET, to: address, describedAs: "127.0.0.1:\(port)")
    }

    /// A connected stream socket with a 10 s receive timeout.
    private static func connect<Address>(_ family: Int32, to address: Address, describedAs name: String) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket() failed") }
        var address = address
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw SetupError("connect() to \(name) failed")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    deinit { close(fd) }

    /// Sends; 0, or the errno of the failure (EPIPE once the peer has closed its end).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int32 {
        let sent = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return sent == bytes.count ? 0 : errno
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Everything until the peer closes (or 10 s pass).
    func readToEnd() -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return out }
            out += buffer[..<count]
        }
    }

    func closeWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// An SCGI request as bytes.
func scgiRequest(_ pairs: [(String, String)], body: [UInt8] = []) -> [UInt8] {
    var block: [UInt8] = []
    for (name, value) in [("CONTENT_LENGTH", String(body.count)), ("SCGI", "1")] + pairs {
        block += Array(name.utf8) + [0] + Array(value.utf8) + [0]
    }
    return Array("\(block.count):".utf8) + block + Array(",".utf8) + body
}

/// A FastCGI responder request as nginx sends it: BEGIN_REQUEST (no keep-conn),
/// the params, an empty PARAMS record, an empty STDIN record.
func fastCGIRequest(_ params: [(String, String)]) -> [UInt8] {
    func record(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
        [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
    }
    func length(_ count: Int) -> [UInt8] {
        count < 128 ? [UInt8(count)] : [UInt8(count >> 24 | 0x80), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
    }
    var encoded: [UInt8] = []
    for (name, value) in params {
        encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
    }
    return record(1, [0, 1, 0, 0, 0, 0, 0, 0]) + record(4, encoded) + record(4, []) + record(5, [])
}
