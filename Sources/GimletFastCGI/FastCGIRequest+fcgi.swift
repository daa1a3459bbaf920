// The only file that calls libfcgi. Every FCGX_* call goes through here.
import CFastCGI
import Glibc

/// libfcgi's process-wide state, initialized once.
enum FastCGILibrary {
    /// `FCGX_Init` is idempotent; it must run before the first request slot.
    static func initialize() throws(FastCGIError) {
        guard FCGX_Init() == 0 else { throw FastCGIError("FCGX_Init failed") }
    }

    /// Opens a listening socket with `FCGX_OpenSocket`.
    static func openSocket(_ address: ListenAddress, backlog: Int) throws(FastCGIError) -> Int32 {
        let fd = FCGX_OpenSocket(address.libfcgiPath, Int32(clamping: backlog))
        guard fd >= 0 else {
            throw FastCGIError("cannot listen on \(address) (is another process using it, or is the directory missing?)", errno: errno)
        }
        return fd
    }
}

/// One worker's libfcgi request slot (`FCGX_Request`), reused request after request.
///
/// It belongs to one worker thread for its whole life.
final class FastCGIRequest {
    enum AcceptResult {
        case accepted
        /// Another worker took the connection first (the listener is non-blocking).
        case noConnection
        case failed(errno: Int32)
    }

    enum BodyResult {
        case complete([UInt8])
        /// Over the limit; what arrived was read and dropped.
        case tooLarge
        /// The stream ended before `CONTENT_LENGTH` bytes arrived.
        case short(received: Int, expected: Int)
    }

    private let raw: UnsafeMutablePointer<FCGX_Request>

    init(listenDescriptor: Int32) throws(FastCGIError) {
        raw = .allocate(capacity: 1)
        guard FCGX_InitRequest(raw, listenDescriptor, FCGI_FAIL_ACCEPT_ON_INTR) == 0 else {
            raw.deallocate()
            throw FastCGIError("FCGX_InitRequest failed")
        }
    }

    deinit {
        FCGX_Free(raw, 1)
        raw.deallocate()
    }

    /// Accepts the next request (on a kept connection, or a new one).
    func accept() -> AcceptResult {
        let result = FCGX_Accept_r(raw)
        if result >= 0 { return .accepted }
        let code = -result
        if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return .noConnection }
        return .failed(errno: code)
    }

    /// Ends the current request: flushes and, unless the server asked to keep
    /// the connection, closes it.
    func finish() {
        FCGX_Finish_r(raw)
    }

    /// The connection the web server asked to keep open (`fastcgi_keep_conn on`), if any.
    var keptConnection: Int32? {
        let fd = raw.pointee.ipcFd
        return fd >= 0 ? fd : nil
    }

    /// The request's CGI environ.
    func environ() -> [String: String] {
        var environ: [String: String] = [:]
        environ.reserveCapacity(40)
        guard var cursor = UnsafePointer(raw.pointee.envp) else { return environ }
        while let entry = cursor.pointee {
            let length = strlen(entry)
            entry.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                let buffer = UnsafeBufferPointer(start: bytes, count: length)
                if let equals = buffer.firstIndex(of: UInt8(ascii: "=")) {
                    let key = String(decoding: UnsafeBufferPointer(rebasing: buffer[..<equals]), as: UTF8.self)
                    let value = String(decoding: UnsafeBufferPointer(rebasing: buffer[(equals + 1)...]), as: UTF8.self)
                    environ[key] = value
                }
            }
            cursor += 1
        }
        return environ
    }

    /// Reads the body as `plan` says.
    ///
    /// - Parameters:
    ///   - expected: the exact length to read, or `nil` to read to the end.
    ///   - limit: the most bytes accepted when reading to the end.
    func readBody(expected: Int?, limit: Int) -> BodyResult {
        let target = expected ?? (limit + 1)
        var body = [UInt8](repeating: 0, count: min(target, expected == nil ? 64 * 1024 : target))
        var received = 0
        while received < target {
            if received == body.count {
                body.append(contentsOf: repeatElement(0, count: min(body.count, target - body.count)))
            }
            let wanted = Int32(clamping: body.count - received)
            let count = body.withUnsafeMutableBufferPointer { buffer -> Int32 in
                guard let start = buffer.baseAddress else { return 0 }
                return UnsafeMutableRawPointer(start + received).withMemoryRebound(to: CChar.self, capacity: Int(wanted)) {
                    FCGX_GetStr($0, wanted, raw.pointee.in)
                }
            }
            if count <= 0 { break }
            received += Int(count)
        }
        if expected == nil, received > limit {
            drain()
            return .tooLarge
        }
        if let expected, received < expected {
            return .short(received: received, expected: expected)
        }
        body.removeSubrange(received...)
        return .complete(body)
    }

    /// Reads and drops what is left of the body (at most 64 MiB), so the web
    /// server is not cut off while it still sends.
    func drain() {
        var scratch = [CChar](repeating: 0, count: 64 * 1024)
        var total = 0
        while total < 64 << 20 {
            let count = scratch.withUnsafeMutableBufferPointer { buffer -> Int32 in
                guard let start = buffer.baseAddress else { return 0 }
                return FCGX_GetStr(start, Int32(buffer.count), raw.pointee.in)
            }
            if count <= 0 { return }
            total += Int(count)
        }
    }

    /// Writes `bytes` to the response stream; `false` if the web server went away.
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return true }
            var offset = 0
            while offset < buffer.count {
                let chunk = Int32(min(buffer.count - offset, 1 << 20))
                let written = UnsafeRawPointer(base + offset).withMemoryRebound(to: CChar.self, capacity: Int(chunk)) {
                    FCGX_PutStr($0, chunk, raw.pointee.out)
                }
                if written < 0 { return false }
                offset += Int(written)
            }
            return true
        }
    }
}

@available(*, unavailable)
extension FastCGIRequest: Sendable {}
