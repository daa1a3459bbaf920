/// A request's body: in memory, in a temporary file, or still arriving.
///
/// By default the host reads the whole body before the handler runs: a body
/// up to `--body-buffer` (1 MiB) into memory (``bytes``), a larger one, up
/// to `--max-body`, into an unnamed ``TemporaryFile`` (``file``) that
/// vanishes when the request ends. A route registered with
/// ``RouteOptions/streamBody`` gets its body as it arrives instead: the
/// handler reads the chunks itself, nothing is spooled, and memory stays
/// bounded whatever the size.
///
/// ```swift
/// // Small bodies: the bytes, as they came.
/// router.post("/echo") { request in
///     .bytes(try request.body.collect(upTo: 1 << 20), contentType: "application/octet-stream")
/// }
/// // Any size, hashed as it arrives: no spooling, no whole body in memory.
/// router.post("/hash", options: .streamBody) { request async throws in
///     var hasher = MyHasher()
///     for try await chunk in request.body.chunks { hasher.update(chunk) }
///     return .text(hasher.hex)
/// }
/// // Any size, kept: the file is linked into place, not copied.
/// router.put("/files/:name") { request in
///     try request.body.spool().keep(at: "/srv/files/\(UUID())")
///     return .text("stored", status: .created)
/// }
/// ```
///
/// Every way of reading works in every state: ``forEachChunk(_:)`` and
/// ``chunks`` replay a body already read, and ``collect(upTo:)`` and
/// ``spool()`` read a streamed body to its end if the handler has not
/// started on it. Only a body whose chunks were already consumed cannot be
/// read again. A body that ends early (the client went away) throws, and
/// the request counts as cancelled (``Request/cancellation``): its session
/// changes are not stored, and nothing is sent.
///
/// Used only by the worker thread that serves the request; not `Sendable`.
public final class RequestBody {
    enum Storage {
        case memory([UInt8])
        case file(TemporaryFile)
        /// Not read yet; the limits say where to keep it if it is collected.
        case pending(BodyStream, BodyLimits)
        /// Handed out chunk by chunk; `stream` says how far it got.
        case consumed(BodyStream)
    }

    private(set) var storage: Storage
    /// Where ``spool()`` puts a body held in memory (the host's `--body-temp-dir`).
    private let directory: String?

    /// A body already in memory.
    init(_ bytes: [UInt8]) {
        storage = .memory(bytes)
        directory = nil
    }

    /// A body still on its transport.
    package init(stream: BodyStream, limits: BodyLimits) {
        storage = .pending(stream, limits)
        directory = limits.temporaryDirectory
    }

    /// The body when it is held in memory; `nil` when it was spooled to a
    /// file or is read as it arrives (see ``collect(upTo:)``).
    public var bytes: [UInt8]? {
        if case .memory(let bytes) = storage { return bytes }
        return nil
    }

    /// The temporary file holding the body when it was larger than
    /// `--body-buffer`; `nil` otherwise.
    public var file: TemporaryFile? {
        if case .file(let file) = storage { return file }
        return nil
    }

    /// The body's size: exact once it has been read, else `CONTENT_LENGTH`
    /// (`nil` when the web server sent none).
    public var count: Int? {
        switch storage {
        case .memory(let bytes): bytes.count
        case .file(let file): file.count
        case .pending(let stream, _): stream.expected
        case .consumed(let stream): stream.ending == .complete ? stream.received : stream.expected
        }
    }

    /// Whether the body ended before its announced length: the client went away.
    package var endedEarly: Bool {
        guard case .consumed(let stream) = storage, case .short = stream.ending else { return false }
        return true
    }

    /// The whole body in memory.
    ///
    /// - Parameter limit: the most bytes to hold; a larger body is a `413`.
    /// - Throws: ``HTTPError`` `413` over `limit` (or over `--max-body`),
    ///   `400` when the body ended early; ``TemporaryFileError`` when its
    ///   file cannot be read; ``RequestBodyError`` when its chunks were
    ///   already consumed.
    public func collect(upTo limit: Int) throws -> [UInt8] {
        switch storage {
        case .memory(let bytes):
            guard bytes.count <= limit else { throw Self.tooLarge(limit) }
            return bytes
        case .file(let file):
            guard file.count <= limit else { throw Self.tooLarge(limit) }
            return try file.read(at: 0, maximum: file.count)
        case .pending(let stream, _):
            try load(stream, memoryLimit: limit, spillingTo: { nil }, overMemory: Self.tooLarge(limit))
            return bytes ?? []
        case .consumed:
            throw RequestBodyError.alreadyRead
        }
    }

    /// The body in a temporary file: the one it was spooled to, or a new one.
    ///
    /// - Throws: ``HTTPError`` `413` over `--max-body`, `400` when the body
    ///   ended early; ``TemporaryFileError`` when the file cannot be made or
    ///   written (a full disk); ``RequestBodyError`` when its chunks were
    ///   already consumed.
    public func spool() throws -> TemporaryFile {
        switch storage {
        case .file(let file):
            return file
        case .memory(let bytes):
            let file = try TemporaryFile(directory: spoolDirectory)
            try file.append(bytes)
            storage = .file(file)
            return file
        case .pending(let stream, let limits):
            let file = try TemporaryFile(directory: limits.temporaryDirectory)
            try read(stream, into: file, buffered: [])
            storage = .file(file)
            return file
        case .consumed:
            throw RequestBodyError.alreadyRead
        }
    }

    /// Calls `body` with the body's bytes, in order, as they arrive (a
    /// streamed body) or from where they are kept.
    ///
    /// - Throws: ``HTTPError`` as ``collect(upTo:)`` does, or what `body` threw.
    public func forEachChunk(_ body: ([UInt8]) throws -> Void) throws {
        switch storage {
        case .memory(let bytes):
            if !bytes.isEmpty { try body(bytes) }
        case .file(let file):
            try file.forEachChunk(body)
        case .pending(let stream, _):
            storage = .consumed(stream)
            while let chunk = try next(of: stream) { try body(chunk) }
        case .consumed:
            throw RequestBodyError.alreadyRead
        }
    }

    /// The body's chunks as an `AsyncSequence`, for async handlers: as they
    /// arrive for a streamed body, else from where they are kept. Each
    /// `next()` blocks the worker thread until its chunk has arrived, as any
    /// read in a handler does.
    public var chunks: Chunks { Chunks(body: self) }

    /// ``RequestBody``'s chunks, one `[UInt8]` at a time.
    public struct Chunks: AsyncSequence {
        public typealias Element = [UInt8]
        let body: RequestBody

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: body) }

        /// Reads the next chunk when asked.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let body: RequestBody
            var offset = 0
            var started = false

            public mutating func next() async throws -> [UInt8]? {
                switch body.storage {
                case .memory(let bytes):
                    defer { offset = bytes.count }
                    return offset < bytes.count ? Array(bytes[offset...]) : nil
                case .file(let file):
                    let chunk = try file.read(at: offset, maximum: 64 * 1024)
                    offset += chunk.count
                    return chunk.isEmpty ? nil : chunk
                case .pending(let stream, _):
                    guard !started else { throw RequestBodyError.alreadyRead }
                    started = true
                    body.storage = .consumed(stream)
                    return try body.next(of: stream)
                case .consumed(let stream):
                    guard started else { throw RequestBodyError.alreadyRead }
                    return try body.next(of: stream)
                }
            }
        }
    }

    // MARK: - The host's side

    /// Reads a pending body before the handler runs: into memory up to
    /// `limits.memoryBytes`, else into a temporary file. Nothing happens to
    /// a body already read.
    ///
    /// - Parameter memoryOnly: a form or JSON body, which must fit in memory.
    /// - Throws: ``HTTPError`` (413, or 400 for a body that ended early:
    ///   then ``endedEarly``), ``TemporaryFileError``.
    package func load(memoryOnly: @autoclosure () -> Bool) throws {
        guard case .pending(let stream, let limits) = storage else { return }
        try load(stream, memoryLimit: limits.memoryBytes, spillingTo: { memoryOnly() ? nil : limits.temporaryDirectory },
                 overMemory: limits.tooLargeForMemory)
    }

    /// Where files made from this body go (the host's `--body-temp-dir`).
    var spoolDirectory: String { directory ?? BodyLimits.defaultTemporaryDirectory }

    /// The body for parsing in memory (a form, JSON, text): read now if it
    /// was pending, within `--body-buffer`.
    ///
    /// - Throws: ``HTTPError`` `413` for a body that is (or would be) in a file.
    func bytesForParsing() throws -> [UInt8] {
        if case .pending = storage { try load(memoryOnly: true) }
        switch storage {
        case .memory(let bytes): return bytes
        case .file(let file): throw HTTPError(.payloadTooLarge, "the body is too large to parse in memory (\(file.count) bytes)")
        case .pending, .consumed: throw RequestBodyError.alreadyRead
        }
    }

    /// Reads and drops what is left of a body the handler did not read to
    /// its end, and lets go of its file: the request is over.
    package func finish() {
        switch storage {
        case .pending(let stream, _), .consumed(let stream): stream.drain()
        case .file(let file): file.close()
        case .memory: break
        }
    }

    /// Reads `stream` into memory up to `memoryLimit`; past it into a
    /// temporary file in the directory `spillingTo` names (asked only then),
    /// or, without one, `overMemory` is thrown.
    private func load(_ stream: BodyStream, memoryLimit: Int, spillingTo spillDirectory: () -> String?,
                      overMemory: @autoclosure () -> HTTPError) throws {
        var buffered: [UInt8] = []
        if let expected = stream.expected, expected <= memoryLimit { buffered.reserveCapacity(expected) }
        storage = .consumed(stream)
        while let chunk = try next(of: stream) {
            if buffered.count + chunk.count > memoryLimit {
                guard let directory = spillDirectory() else {
                    stream.drain()
                    throw overMemory()
                }
                let file: TemporaryFile
                do { file = try TemporaryFile(directory: directory) } catch {
                    stream.drain()
                    throw error
                }
                try read(stream, into: file, buffered: buffered + chunk)
                storage = .file(file)
                return
            }
            buffered += chunk
        }
        storage = .memory(buffered)
    }

    /// Writes `buffered`, then the rest of `stream`, to `file`; on a write
    /// failure the rest is drained.
    private func read(_ stream: BodyStream, into file: TemporaryFile, buffered: [UInt8]) throws {
        storage = .consumed(stream)
        do {
            if !buffered.isEmpty { try file.append(buffered) }
            while let chunk = try next(of: stream) { try file.append(chunk) }
        } catch let error as TemporaryFileError {
            stream.drain()
            throw error
        }
    }

    /// The stream's next chunk, its errors as the answers they call for.
    private func next(of stream: BodyStream) throws(HTTPError) -> [UInt8]? {
        do {
            return try stream.next()
        } catch {
            switch error {
            case .tooLarge(let limit): throw Self.tooLarge(limit)
            case .short(let received, let expected, _):
                throw HTTPError(.badRequest, "the request body ended after \(received) of \(expected.map(String.init) ?? "?") bytes")
            case .abandoned: throw HTTPError(.badRequest, "the request body was abandoned")
            }
        }
    }

    static func tooLarge(_ limit: Int) -> HTTPError {
        HTTPError(.payloadTooLarge, "request body is larger than \(limit) bytes")
    }
}

@available(*, unavailable)
extension RequestBody: Sendable {}

/// A mistake in how a handler reads its body.
public enum RequestBodyError: Error, Sendable, CustomStringConvertible {
    /// The body's chunks were already handed out (``RequestBody/forEachChunk(_:)``,
    /// ``RequestBody/chunks``): they cannot be read again.
    case alreadyRead

    public var description: String {
        switch self {
        case .alreadyRead: "the request body was already read as it arrived; read it once, or collect it first"
        }
    }
}
