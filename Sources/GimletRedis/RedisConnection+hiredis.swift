// The only file that calls hiredis. Every redis* call goes through here.
import CHiredis
import Glibc

/// A Redis failure: connection, timeout, protocol, or an error reply.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What failed, with hiredis's or Redis's message.
    public let message: String
    /// Whether the connection is unusable afterwards (it is then dropped, and the next request reconnects).
    public let connectionLost: Bool
    /// How many replies of the pipeline had arrived when it failed: with none,
    /// a connection that died while idle never delivered the commands.
    var repliesReceived = 0
    /// hiredis's kind of failure (`REDIS_ERR_IO`, `REDIS_ERR_EOF`,
    /// `REDIS_ERR_PROTOCOL`, …), or the first word of Redis's error reply
    /// (`NOAUTH`, `WRONGPASS`, …); `nil` when neither said.
    public var code: String? = nil

    public var description: String { message }
}

/// One reply from Redis.
enum RedisReply: Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)
}

extension RedisReply {
    /// The text of an error reply; `nil` for any other reply.
    var errorMessage: String? {
        if case .error(let message) = self { message } else { nil }
    }

    /// The text of the first error reply among `replies` (a plain loop: this
    /// runs on every exchange).
    static func firstError(in replies: [RedisReply]) -> String? {
        for reply in replies { if case .error(let message) = reply { return message } }
        return nil
    }

    /// An error reply's code: its first word when that is in capitals, as
    /// Redis writes them (`ERR`, `WRONGTYPE`, `NOAUTH`, `READONLY`, `OOM`).
    static func errorCode(_ message: String) -> String? {
        let word = message.prefix { $0 != " " }
        return !word.isEmpty && word.allSatisfy({ $0.isUppercase || $0 == "_" }) ? String(word) : nil
    }
}

/// Where Redis listens.
enum RedisEndpoint: Sendable, Equatable {
    case tcp(host: String, port: Int)
    case unix(path: String)
}

/// One hiredis connection.
///
/// `@unchecked Sendable`: a connection is used by one thread at a time. The
/// backend's pool hands it out under its lock and the borrowing thread alone
/// uses it until it gives it back (or drops it after an error).
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects within `timeoutMilliseconds`, and uses the same timeout for every command.
    init(_ endpoint: RedisEndpoint, timeoutMilliseconds: Int) throws(RedisError) {
        let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        let made: UnsafeMutablePointer<redisContext>?
        switch endpoint {
        case .tcp(let host, let port): made = redisConnectWithTimeout(host, Int32(port), timeout)
        case .unix(let path): made = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let made else { throw RedisError(message: "cannot allocate a hiredis context", connectionLost: true) }
        if made.pointee.err != 0 {
            let message = Self.errorString(made)
            let code = Self.errorKind(made)
            redisFree(made)
            throw RedisError(message: "cannot connect to \(endpoint): \(message)", connectionLost: true, code: code)
        }
        guard redisSetTimeout(made, timeout) == REDIS_OK else {
            redisFree(made)
            throw RedisError(message: "cannot set the command timeout", connectionLost: true)
        }
        context = made
    }

    deinit { redisFree(context) }

    /// Sends every command, then reads every reply: one round trip.
    ///
    /// - Throws: ``RedisError`` with `connectionLost` for I/O failures and timeouts.
    func pipeline(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        try queue(pipeline)
        var replies: [RedisReply] = []
        replies.reserveCapacity(pipeline.count)
        for _ in 0..<pipeline.count {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisError(message: Self.errorString(context), connectionLost: true, repliesReceived: replies.count,
                                 code: Self.errorKind(context))
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Sends `pipeline` and reads nothing: its replies, and whatever Redis
    /// pushes to a subscriber, come through ``pushedReply(waitingUpTo:)``.
    func send(_ pipeline: RedisPipeline) throws(RedisError) {
        try queue(pipeline)
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else { throw lost() }
        }
    }

    /// The next reply, such as a message to a subscriber, waiting up to
    /// `milliseconds` for it to arrive; `nil` if none came in that time.
    ///
    /// - Throws: ``RedisError`` with `connectionLost` when the connection broke.
    func pushedReply(waitingUpTo milliseconds: Int) throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        // One read may have brought several replies: the reader keeps the rest.
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { throw lost() }
        if raw == nil {
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: milliseconds))
            if ready == 0 || (ready < 0 && errno == EINTR) { return nil }
            guard ready > 0, redisBufferRead(context) == REDIS_OK, redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                throw lost()
            }
        }
        guard let raw else { return nil }  // part of a reply so far
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Puts `pipeline`'s bytes, RESP already, in hiredis's output buffer.
    private func queue(_ pipeline: RedisPipeline) throws(RedisError) {
        precondition(pipeline.isComplete, "a Redis command is missing arguments")
        let queued = pipeline.bytes.withUnsafeBufferPointer { bytes in
            bytes.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    redisAppendFormattedCommand(context, $0, bytes.count)
                }
            } ?? REDIS_OK
        }
        guard queued == REDIS_OK else { throw lost() }
    }

    /// The error of a connection that broke, in hiredis's words.
    private func lost() -> RedisError {
        RedisError(message: Self.errorString(context), connectionLost: true, code: Self.errorKind(context))
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len)) } ?? [])
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STATUS:
            return .status(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element?[index] { elements.append(convert(element)) }
            }
            return .array(elements)
        default:
            return .error("unknown reply type \(value.type)")
        }
    }

    private static func text(_ value: redisReply) -> String {
        guard let str = value.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: value.len), as: UTF8.self)
    }

    /// The name of hiredis's error kind (`redisContext.err`).
    private static func errorKind(_ context: UnsafeMutablePointer<redisContext>) -> String? {
        switch context.pointee.err {
        case REDIS_ERR_IO: "REDIS_ERR_IO"
        case REDIS_ERR_EOF: "REDIS_ERR_EOF"
        case REDIS_ERR_PROTOCOL: "REDIS_ERR_PROTOCOL"
        case REDIS_ERR_OOM: "REDIS_ERR_OOM"
        case REDIS_ERR_OTHER: "REDIS_ERR_OTHER"
        default: nil
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let message = String(decoding: bytes, as: UTF8.self)
            return message.isEmpty ? "connection error \(context.pointee.err)" : message
        }
    }
}
