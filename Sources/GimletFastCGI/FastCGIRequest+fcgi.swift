// The only file that calls libfcgi. Every FCGX_* call goes through here.
import CFastCGI
@_spi(GimletInlined) import GimletHTTP
@_spi(GimletInlined) import GimletSystem
import GimletTransport
import Glibc
import Logging

/// libfcgi's process-wide state, initialized once.
enum FastCGILibrary {
    /// `FCGX_Init` is idempotent; it must run before the first request slot.
    static func initialize() throws(TransportError) {
        guard FCGX_Init() == 0 else { throw TransportError("FCGX_Init failed") }
    }
}

/// One worker's libfcgi request slot (`FCGX_Request`), reused request after request.
///
/// It belongs to one worker thread for its whole life. As the request's
/// ``GimletHTTP/ExchangeChannel`` it reads the body from `FCGI_STDIN` and
/// writes the answer to `FCGI_STDOUT`.
final class FastCGIRequest: ExchangeChannel {
    enum AcceptResult {
        case accepted
        /// Another worker took the connection first (the listener is non-blocking).
        case noConnection
        case failed(errno: Int32)
    }

    private let raw: UnsafeMutablePointer<FCGX_Request>
    /// What the body is read through, 64 KiB at a time, and drained into.
    private var scratch = [CChar](repeating: 0, count: 64 * 1024)
    /// Whether a finished connection is closed at once, without libfcgi's linger.
    private let closesAtOnce: Bool
    /// The read deadline of the request being read: armed before its head,
    /// ended once its body is read (or drained).
    var reading: (gate: ConnectionGate, lease: ReadDeadlines.Lease)?

    /// Whether the request came in the FastCGI `AUTHORIZER` role (libfcgi's
    /// `role`; no environ search). Such a request has no input stream at
    /// all: the web server sends no body, and (as Apache's mod_authnz_fcgi)
    /// not even the empty `FCGI_STDIN` record that ends one, so reading
    /// would wait for the server's timeout.
    private(set) var isAuthorizerRole = false

    /// Ends the read deadline, if one is armed.
    func endReading() {
        guard let reading else { return }
        self.reading = nil
        reading.gate.endReading(reading.lease)
    }

    /// A request slot for connections the server accepts from `listenDescriptor`.
    ///
    /// libfcgi is given `neverListening` (``SocketCalls/neverListening()``)
    /// as its listener: it reads requests only from connections handed to
    /// ``attach(_:)``, and accepts none itself, so each one has passed the
    /// server's allow-list and gets its read deadline.
    ///
    /// On a unix socket a finished connection is simply closed. libfcgi would
    /// otherwise shut down its side, then wait (up to 2 s, in `poll`) for the
    /// web server to close first, reading what it sends: a guard against TCP
    /// resetting a connection whose response is still unread. A unix socket
    /// keeps written data for the reader whatever the writer does, so the
    /// worker need not block there, and moves on to the next connection.
    init(listenDescriptor: Int32, neverListening: Int32) throws(TransportError) {
        closesAtOnce = SocketCalls.isUnixSocket(listenDescriptor)
        raw = .allocate(capacity: 1)
        guard FCGX_InitRequest(raw, neverListening, FCGI_FAIL_ACCEPT_ON_INTR) == 0 else {
            raw.deallocate()
            throw TransportError("FCGX_InitRequest failed")
        }
    }

    deinit {
        FCGX_Free(raw, 1)
        raw.deallocate()
    }

    /// Reads the next request's head from the attached connection.
    ///
    /// `.noConnection` when the connection ended (closed by the web server,
    /// shut down past its read deadline, or a protocol error): libfcgi has
    /// closed it and, its listener never listening, accepted nothing else.
    func accept() -> AcceptResult {
        let result = FCGX_Accept_r(raw)
        if result >= 0 {
            isAuthorizerRole = raw.pointee.role == FCGI_AUTHORIZER
            return .accepted
        }
        let code = -result
        if code == EAGAIN || code == EWOULDBLOCK || code == EINTR || code == EINVAL { return .noConnection }
        return .failed(errno: code)
    }

    /// Ends the current request: flushes and, unless the server asked to keep
    /// the connection, closes it.
    func finish() {
        // A detached request is closed without the shutdown-and-wait.
        if closesAtOnce { _ = FCGX_Detach(raw) }
        FCGX_Finish_r(raw)
    }

    /// After ``finish()``: the connection the web server asked to keep open
    /// (`fastcgi_keep_conn on`), taken out of this slot, which then has no
    /// connection; `nil` when it was closed. The caller owns the descriptor.
    func takeKeptConnection() -> Int32? {
        let fd = raw.pointee.ipcFd
        guard fd >= 0 else { return nil }
        raw.pointee.ipcFd = -1
        raw.pointee.keepConnection = 0
        raw.pointee.detached = 0
        return fd
    }

    /// Gives this slot a kept connection (from ``takeKeptConnection()``,
    /// maybe another slot's): the next ``accept()`` reads its request
    /// instead of accepting, and closes it if the web server closed it.
    func attach(_ fd: Int32) {
        raw.pointee.ipcFd = fd
        // Read by the FCGX_Finish_r that FCGX_Accept_r starts with: 0 would close it.
        raw.pointee.keepConnection = 1
        raw.pointee.detached = 0
    }

    /// The current request's connection, for the worker thread to watch
    /// while async code waits: an `FCGI_ABORT_REQUEST` record or the
    /// connection closing cancels the request.
    var connectionWatch: ConnectionWatch? {
        let fd = raw.pointee.ipcFd
        return fd >= 0 ? ConnectionWatch(descriptor: fd, abortRecordType: UInt8(FCGI_ABORT_REQUEST)) : nil
    }

    /// The request's CGI environ: one copy of the bytes, no decoding yet.
    func environ() -> CGIEnvironment {
        // First pass: where each entry goes and how long all of them are;
        // second pass: one copy into a buffer of exactly that size.
        var layout = CGIEnvironment.Layout(capacity: 40)
        var total = 0
        if var cursor = UnsafePointer(raw.pointee.envp) {
            while let entry = cursor.pointee {
                let length = strlen(entry)
                if let equals = memchr(entry, Int32(UInt8(ascii: "=")), length) {
                    let keyLength = UnsafeRawPointer(equals) - UnsafeRawPointer(entry)
                    layout.append(start: total, keyLength: keyLength, valueLength: length - keyLength - 1)
                    total += length
                }
                cursor += 1
            }
        }
        let buffer = [UInt8](unsafeUninitializedCapacity: total) { bytes, count in
            count = 0
            guard let base = bytes.baseAddress, var cursor = UnsafePointer(raw.pointee.envp) else { return }
            while let entry = cursor.pointee {
                let length = strlen(entry)
                // Only entries with "=" were laid out, in this order.
                if count + length <= total, memchr(entry, Int32(UInt8(ascii: "=")), length) != nil {
                    memcpy(base + count, entry, length)
                    count += length
                }
                cursor += 1
            }
        }
        return CGIEnvironment(storage: buffer, layout: layout)
    }

    /// Appends the next bytes of the body to `buffer`: at most `maximum`,
    /// `.end` at the empty `FCGI_STDIN` record that ends the stream.
    ///
    /// The web server ends the body with that record even after
    /// `CONTENT_LENGTH` bytes; ``drainBody()`` reads it. It must be read
    /// before the connection closes: on Linux, closing a socket with unread
    /// input resets it, so nginx lost the tail of large responses
    /// (ECONNRESET) and Apache, still sending that record, failed the
    /// request (EPIPE, "sending empty stdin").
    func readBody(into buffer: inout [UInt8], maximum: Int) -> BodyChunkRead {
        if isAuthorizerRole {
            endReading()
            return .end
        }
        let wanted = Int32(clamping: min(maximum, scratch.count))
        let got = scratch.withUnsafeMutableBufferPointer { scratch -> Int32 in
            guard let base = scratch.baseAddress else { return 0 }
            return FCGX_GetStr(base, wanted, raw.pointee.in)
        }
        guard got > 0 else {
            // libfcgi reports a read error only through the stream's flag.
            let failed = FCGX_GetError(raw.pointee.in) != 0
            endReading()
            return failed ? .failed("the connection failed") : .end
        }
        scratch.withUnsafeBufferPointer { scratch in
            scratch.withMemoryRebound(to: UInt8.self) { buffer.append(contentsOf: $0.prefix(Int(got))) }
        }
        reading?.lease.extend()
        return .bytes
    }

    /// Reads and drops what is left of the input stream, up to its end
    /// record (at most 64 MiB), so the web server is not cut off while it
    /// still sends.
    func drainBody() {
        defer { endReading() }
        if isAuthorizerRole { return }
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

    /// The smallest piece ``write(_:)`` frames itself rather than through libfcgi's buffer.
    static let framedHereFrom = 32 * 1024

    /// The server's stream pump, which streaming responses are handed to.
    var pump: StreamPump?

    /// Writes the headers, then hands the connection to the stream pump
    /// with the request's id: the pump writes `FCGI_STDOUT` records and ends
    /// the request itself. libfcgi is left a request whose streams count as
    /// closed and no connection (its `close` of descriptor -1 does nothing),
    /// so ``finish()`` writes and closes nothing. No descriptor is made: a
    /// process at its open-file limit still streams.
    func startStream(head: [UInt8], stream: ResponseStream, logger: Logger) {
        guard write(head), FCGX_FFlush(raw.pointee.out) == 0, let pump, raw.pointee.ipcFd >= 0,
              let out = raw.pointee.out, let err = raw.pointee.err
        else {
            logger.debug("the web server closed the connection before a stream started")
            return
        }
        let descriptor = raw.pointee.ipcFd
        out.pointee.wasFCloseCalled = 1
        err.pointee.wasFCloseCalled = 1
        raw.pointee.keepConnection = 0
        raw.pointee.ipcFd = -1
        pump.start(descriptor: descriptor, framing: FastCGIStreamFraming(requestID: UInt16(truncatingIfNeeded: raw.pointee.requestId)),
                   stream: stream)
    }

    /// Writes `bytes` to the response stream; `false` if the web server went away.
    ///
    /// libfcgi frames what it is given in records of its 8 KiB buffer, one
    /// `write` each. A large piece (a file's chunk) is framed here instead,
    /// in 32 KiB records written at once, after what libfcgi holds: a
    /// quarter of the system calls for the app, and a quarter of the records
    /// for the web server to take apart.
    func write(_ bytes: [UInt8]) -> Bool {
        if bytes.count >= Self.framedHereFrom {
            guard FCGX_FFlush(raw.pointee.out) == 0, raw.pointee.ipcFd >= 0 else { return false }
            let framed = FastCGIStreamFraming(requestID: UInt16(truncatingIfNeeded: raw.pointee.requestId)).frame(bytes)
            let descriptor = raw.pointee.ipcFd
            let outcome = framed.withUnsafeBytes { buffer in
                Result { () throws(SystemCallError) in try SystemCall.writeAll(descriptor, buffer, socket: true) }
            }
            if case .failure = outcome { return false }
            return true
        }
        return bytes.withUnsafeBufferPointer { buffer in
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

/// A stream's bytes in `FCGI_STDOUT` records of the request `requestID`; the
/// empty record and `FCGI_END_REQUEST` end it (FastCGI 1.0, §3.3 and §5.5).
struct FastCGIStreamFraming: StreamFraming {
    let requestID: UInt16

    func frame(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        var framed: [UInt8] = []
        framed.reserveCapacity(bytes.count + (bytes.count / 32_768 + 1) * 8)
        var start = 0
        while start < bytes.count {
            let count = min(32_768, bytes.count - start)
            framed += header(type: UInt8(FCGI_STDOUT), length: count)
            framed += bytes[start..<(start + count)]
            start += count
        }
        return framed
    }

    var trailer: [UInt8] {
        // An empty FCGI_STDOUT ends the body; FCGI_END_REQUEST: app status 0, FCGI_REQUEST_COMPLETE.
        header(type: UInt8(FCGI_STDOUT), length: 0) + header(type: UInt8(FCGI_END_REQUEST), length: 8)
            + [0, 0, 0, 0, UInt8(FCGI_REQUEST_COMPLETE), 0, 0, 0]
    }

    private func header(type: UInt8, length: Int) -> [UInt8] {
        [UInt8(FCGI_VERSION_1), type, UInt8(requestID >> 8), UInt8(requestID & 0xFF),
         UInt8(length >> 8), UInt8(length & 0xFF), 0, 0]
    }
}
