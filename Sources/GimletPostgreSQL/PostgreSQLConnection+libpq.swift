// The only file that calls libpq. Every PQ* call goes through here.
import CLibPQ
import Glibc
@_spi(GimletInlined) import GimletSystem

/// A PostgreSQL failure: connecting, a timeout, a lost connection, or an
/// error the server reported for a statement.
public struct PostgreSQLError: Error, Sendable, CustomStringConvertible {
    /// What failed, with libpq's or the server's message.
    public let message: String
    /// The server's SQLSTATE (`40001`, `53300`, `57P01`, …) when it sent one.
    public let code: String?
    /// Whether the connection is unusable afterwards (it is then dropped,
    /// and the next request connects anew).
    public let connectionLost: Bool
    /// Whether the statement may have reached the server: false when the
    /// connection failed before it was handed to the socket.
    let sent: Bool

    init(_ message: String, code: String? = nil, connectionLost: Bool, sent: Bool = true) {
        self.message = message
        self.code = code
        self.connectionLost = connectionLost
        self.sent = sent
    }

    public var description: String { code.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One statement's parameter, sent in binary or text form.
enum PostgreSQLParameter {
    /// Binary format: a `bytea`'s raw bytes, or an array's binary encoding (``PostgreSQLArray``).
    case bytes([UInt8])
    /// Text, for any other type (the server parses it: `int8`, `jsonb`, …).
    case text(String)
}

/// The rows of a result, each column's value in binary format (`nil` for
/// SQL NULL): the raw bytes of a `bytea`, the text of a `text` or `json`.
struct PostgreSQLRows {
    var rows: [[[UInt8]?]] = []
}

/// One libpq connection, used in blocking steps with a deadline of its own:
/// libpq's blocking calls wait without a limit, so each statement is sent,
/// then its answer awaited with `poll` up to `timeoutMilliseconds`.
///
/// `@unchecked Sendable`: a connection is used by one thread at a time. The
/// backend's pool hands it out under its lock and the borrowing thread alone
/// uses it until it gives it back (or drops it after an error).
final class PostgreSQLConnection: @unchecked Sendable {
    private let connection: OpaquePointer
    private let timeoutMilliseconds: Int32

    /// Connects with libpq's keyword/value `parameters` (`host`, `port`,
    /// `dbname`, `user`, `password`, `sslmode`, `connect_timeout`, …).
    init(parameters: [(String, String)], timeoutMilliseconds: Int) throws(PostgreSQLError) {
        self.timeoutMilliseconds = Int32(clamping: timeoutMilliseconds)
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            for pointer in keywords { free(pointer) }
            for pointer in values { free(pointer) }
        }
        let made = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 0)
            }
        }
        guard let made else { throw PostgreSQLError("libpq could not allocate a connection", connectionLost: true, sent: false) }
        guard PQstatus(made) == CONNECTION_OK else {
            let message = Self.text(PQerrorMessage(made))
            PQfinish(made)
            throw PostgreSQLError("cannot connect: \(message)", connectionLost: true, sent: false)
        }
        connection = made
    }

    deinit { PQfinish(connection) }

    /// Runs `sql` (one or more statements, no parameters); the rows of the
    /// last statement that returned any, in text format.
    @discardableResult
    func execute(_ sql: String) throws(PostgreSQLError) -> PostgreSQLRows {
        guard PQsendQuery(connection, sql) == 1 else { throw sendFailure() }
        return try awaitResults()
    }

    /// Whether the connection still works, checked without a round trip:
    /// the server sends nothing unasked to an idle connection of ours (no
    /// `LISTEN`, every statement's answer read whole) except when it ends
    /// the session, with a `FATAL` message (`57P01` on a shutdown) and the
    /// end of the stream; so anything to read means it is gone. (Reading
    /// the message would not tell: libpq marks the connection bad only
    /// once it meets the end of the stream, after the next statement was sent.)
    var isUsable: Bool {
        var entry = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        guard let ready = try? SystemCall.retrying("poll", { poll(&entry, 1, 0) }) else { return false }
        return ready == 0 && PQstatus(connection) == CONNECTION_OK
    }

    /// Prepares `sql` on this connection as the statement `name`.
    func prepare(_ name: String, _ sql: String) throws(PostgreSQLError) {
        guard PQsendPrepare(connection, name, sql, 0, nil) == 1 else { throw sendFailure() }
        _ = try awaitResults()
    }

    /// Runs the prepared statement `name` with `parameters`; its rows, in binary format.
    func run(_ name: String, _ parameters: [PostgreSQLParameter]) throws(PostgreSQLError) -> PostgreSQLRows {
        try send(name, parameters)
        return try awaitResults()
    }

    /// Runs the prepared `statements` in one round trip (libpq's pipeline
    /// mode) and in one transaction: the server commits at the pipeline's
    /// end, or applies none of them if one fails. The rows of each, in
    /// binary format, or the first error.
    func runPipeline(_ statements: [(name: String, parameters: [PostgreSQLParameter])]) throws(PostgreSQLError) -> [PostgreSQLRows] {
        guard PQenterPipelineMode(connection) == 1 else { throw sendFailure() }
        var sent = false
        do throws(PostgreSQLError) {
            for statement in statements { try send(statement.name, statement.parameters) }
            guard PQpipelineSync(connection) == 1 else { throw sendFailure() }
            sent = true
            let deadline = self.deadline()
            var results: [PostgreSQLRows] = []
            var failure: PostgreSQLError?
            for _ in statements {
                do throws(PostgreSQLError) {
                    results.append(try awaitResults(until: deadline))
                } catch {
                    if error.connectionLost { throw error }
                    failure = failure ?? error
                    results.append(PostgreSQLRows())
                }
            }
            // The end of the pipeline: its transaction is over.
            try awaitInput(until: deadline)
            guard let end = PQgetResult(connection) else {
                throw PostgreSQLError("no end of pipeline from the server", connectionLost: true)
            }
            let status = PQresultStatus(end)
            PQclear(end)
            guard status == PGRES_PIPELINE_SYNC, PQexitPipelineMode(connection) == 1 else {
                throw PostgreSQLError("unexpected end of pipeline: \(Self.text(PQerrorMessage(connection)))", connectionLost: true)
            }
            if let failure { throw failure }
            return results
        } catch {
            // A connection left in pipeline mode cannot run the next request's statement.
            let lost = error.connectionLost || PQpipelineStatus(connection) != PQ_PIPELINE_OFF
            throw PostgreSQLError(error.message, code: error.code, connectionLost: lost, sent: error.sent && sent)
        }
    }

    /// Hands the prepared statement `name` with `parameters` to libpq.
    private func send(_ name: String, _ parameters: [PostgreSQLParameter]) throws(PostgreSQLError) {
        // Each parameter's bytes, kept alive until the statement is handed to libpq.
        let buffers: [[UInt8]] = parameters.map { parameter in
            switch parameter {
            case .bytes(let bytes): bytes
            case .text(let text): Array(text.utf8) + [0]
            }
        }
        let lengths: [Int32] = parameters.indices.map { index in
            if case .bytes = parameters[index] { Int32(buffers[index].count) } else { 0 }
        }
        let formats: [Int32] = parameters.map { if case .bytes = $0 { 1 } else { 0 } }
        let sent = withPointers(to: buffers) { pointers in
            PQsendQueryPrepared(connection, name, Int32(parameters.count), pointers, lengths, formats, 1)
        }
        guard sent == 1 else { throw sendFailure() }
    }

    /// Calls `body` with a C array of pointers to each buffer's first byte.
    private func withPointers<T>(to buffers: [[UInt8]], _ body: ([UnsafePointer<CChar>?]) -> T) -> T {
        var pointers: [UnsafePointer<CChar>?] = []
        pointers.reserveCapacity(buffers.count)
        func next(_ index: Int) -> T {
            guard index < buffers.count else { return body(pointers) }
            return buffers[index].withUnsafeBufferPointer { buffer in
                pointers.append(buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) })
                return next(index + 1)
            }
        }
        return next(0)
    }

    /// The failure of a `PQsend…` call: nothing reached the server.
    private func sendFailure() -> PostgreSQLError {
        PostgreSQLError(Self.text(PQerrorMessage(connection)), connectionLost: PQstatus(connection) != CONNECTION_OK,
                        sent: false)
    }

    /// When an answer sent now must have come: the timeout from now.
    private func deadline() -> UInt64 { SystemCall.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000 }

    /// Waits (up to the deadline) for every result of what was sent (in a
    /// pipeline: of its next statement); the rows of the last that has
    /// any, or the first error.
    private func awaitResults(until deadline: UInt64? = nil) throws(PostgreSQLError) -> PostgreSQLRows {
        let deadline = deadline ?? self.deadline()
        var rows = PostgreSQLRows()
        var failure: PostgreSQLError?
        while true {
            try awaitInput(until: deadline)
            guard let result = PQgetResult(connection) else { break }
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK:
                rows = Self.rows(of: result)
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                break
            case PGRES_PIPELINE_ABORTED:
                // Skipped after an earlier statement's error, which is the one reported.
                failure = failure ?? PostgreSQLError("skipped after an error", connectionLost: false)
            default:
                if failure == nil {
                    let code = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
                    let message = Self.text(PQresultErrorMessage(result))
                    failure = PostgreSQLError(message.isEmpty ? Self.text(PQerrorMessage(connection)) : message, code: code,
                                              connectionLost: PQstatus(connection) != CONNECTION_OK)
                }
            }
        }
        if let failure { throw failure }
        guard PQstatus(connection) == CONNECTION_OK else {
            throw PostgreSQLError(Self.text(PQerrorMessage(connection)), connectionLost: true)
        }
        return rows
    }

    /// Reads from the socket until libpq has a whole result (or knows the
    /// connection is gone), up to the deadline.
    private func awaitInput(until deadline: UInt64) throws(PostgreSQLError) {
        while PQisBusy(connection) == 1 {
            let now = SystemCall.monotonicNanoseconds()
            guard now < deadline else {
                throw PostgreSQLError("no answer within \(timeoutMilliseconds) ms", connectionLost: true)
            }
            var entry = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
            let wait = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            do {
                _ = try SystemCall.retrying("poll") { poll(&entry, 1, wait) }
            } catch {
                throw PostgreSQLError("\(error)", connectionLost: true)
            }
            guard PQconsumeInput(connection) == 1 else {
                throw PostgreSQLError(Self.text(PQerrorMessage(connection)), connectionLost: true)
            }
        }
    }

    private static func rows(of result: OpaquePointer) -> PostgreSQLRows {
        let count = PQntuples(result), columns = PQnfields(result)
        var rows = PostgreSQLRows()
        rows.rows.reserveCapacity(Int(count))
        for row in 0..<count {
            var values: [[UInt8]?] = []
            values.reserveCapacity(Int(columns))
            for column in 0..<columns {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                guard let base = PQgetvalue(result, row, column) else {
                    values.append([])
                    continue
                }
                values.append(Array(UnsafeRawBufferPointer(start: base, count: length)))
            }
            rows.rows.append(values)
        }
        return rows
    }

    /// libpq's message, without its trailing newline.
    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        var text = String(cString: pointer)
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}
