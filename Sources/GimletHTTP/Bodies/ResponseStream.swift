/// A response body written while it is produced: chunks as they come, or
/// server-sent events.
///
/// Once the handler has returned a streaming response, the host writes its
/// headers and hands the connection to its stream pump: the producer runs
/// as a task on Swift's global executor, and **no worker thread waits for
/// it**. While the producer awaits its next chunk the connection is merely
/// watched (epoll), and the worker serves other requests. When the web
/// server goes away (its client left), the producer's task is cancelled
/// and its next write throws `CancellationError`.
///
/// The session is committed when the handler returns, before the first
/// byte is sent: a stream cannot change the session, and its producer
/// gets no `Request` (it is `@Sendable`; copy what it needs first).
///
/// ```swift
/// router.get("/export.csv") { request in
///     let rows = try store.rows(of: try request.session.boundUser ?? "")
///     return .stream(contentType: "text/csv") { writer in
///         for row in rows { try await writer.write(row.csvLine) }
///     }
/// }
/// ```
public final class ResponseStream: Sendable, Equatable {
    /// Writes the body; the response ends when it returns (or throws).
    let produce: @Sendable (ResponseWriter) async throws -> Void
    /// Sent whenever the stream has been quiet this long: a comment line
    /// for server-sent events, so that idle streams outlive the proxies'
    /// read timeouts. `nil`: no heartbeat.
    let heartbeat: (interval: Duration, bytes: [UInt8])?

    init(heartbeat: (interval: Duration, bytes: [UInt8])? = nil,
         produce: @escaping @Sendable (ResponseWriter) async throws -> Void) {
        self.produce = produce
        self.heartbeat = heartbeat
    }

    public static func == (lhs: ResponseStream, rhs: ResponseStream) -> Bool { lhs === rhs }

    /// The heartbeat's interval (for the transports).
    package var heartbeatInterval: Duration? { heartbeat?.interval }
    /// The heartbeat's bytes (for the transports).
    package var heartbeatBytes: [UInt8] { heartbeat?.bytes ?? [] }

    /// Runs the producer with `sink` as its connection (for the transports).
    package func run(into sink: some StreamSink) async throws {
        try await produce(ResponseWriter(sink: sink))
    }
}

/// Where a streaming response's bytes go: the host's stream pump, or a
/// test's buffer.
package protocol StreamSink: Sendable {
    /// Sends `bytes` (framed for the transport by the sink); suspends while
    /// too much is still waiting to be sent.
    ///
    /// - Throws: `CancellationError` once the connection is gone.
    func write(_ bytes: [UInt8]) async throws
}

/// What a streaming response's producer writes with.
public struct ResponseWriter: Sendable {
    let sink: any StreamSink

    /// Sends `bytes` now. Waits (without a thread) while the web server is
    /// slower than the producer, so a stream never piles up in memory.
    ///
    /// - Throws: `CancellationError` when the client has gone away.
    public func write(_ bytes: [UInt8]) async throws {
        try Task.checkCancellation()
        guard !bytes.isEmpty else { return }
        try await sink.write(bytes)
    }

    /// Sends `text` as UTF-8.
    public func write(_ text: String) async throws { try await write(Array(text.utf8)) }
}

/// One server-sent event (the HTML standard's `text/event-stream`).
public struct ServerSentEvent: Sendable, Equatable {
    /// The event's data; each line becomes a `data:` line.
    public var data: String
    /// Its type (`event:`), `message` when `nil`.
    public var event: String?
    /// Its id (`id:`): the browser sends the last one back as
    /// `Last-Event-ID` when it reconnects (``Request/lastEventID``).
    public var id: String?
    /// How long the browser waits before reconnecting (`retry:`).
    public var retry: Duration?

    /// An event; only the data is required.
    public init(data: String, event: String? = nil, id: String? = nil, retry: Duration? = nil) {
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
    }

    /// Whole milliseconds, as `retry:` takes them.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The event's lines. A CR or LF in `event` or `id` would start a
    /// field of its own: they are dropped there; in `data` every line
    /// becomes its own `data:` line, as the standard reads them back.
    public var bytes: [UInt8] {
        func clean(_ text: String) -> String { String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" }) }
        var text = ""
        if let event { text += "event: " + clean(event) + "\n" }
        if let id { text += "id: " + clean(id) + "\n" }
        if let retry { text += "retry: \(Self.milliseconds(retry))\n" }
        let normalized = data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: " + line + "\n" }
        return Array((text + "\n").utf8)
    }
}

/// What a server-sent-events producer sends with.
public struct EventWriter: Sendable {
    let writer: ResponseWriter

    /// Sends one event.
    ///
    /// - Throws: `CancellationError` when the client has gone away.
    public func send(_ event: ServerSentEvent) async throws { try await writer.write(event.bytes) }

    /// Sends an event with `data` and, if given, its type and id.
    public func send(data: String, event: String? = nil, id: String? = nil) async throws {
        try await send(ServerSentEvent(data: data, event: event, id: id))
    }

    /// Sends a comment line (ignored by browsers).
    public func comment(_ text: String) async throws {
        try await writer.write(Array((": " + text.replacingOccurrences(of: "\n", with: " ") + "\n\n").utf8))
    }
}

extension Response {
    /// A response whose body `produce` writes while it runs, on Swift's
    /// global executor, the connection watched by the host rather than held
    /// by a worker thread (see ``ResponseStream``). nginx is told not to
    /// buffer it (`X-Accel-Buffering: no`).
    ///
    /// - Parameters:
    ///   - status: the status.
    ///   - contentType: the body's type.
    ///   - produce: writes the body; the response ends when it returns.
    public static func stream(status: HTTPStatus = .ok, contentType: String,
                              _ produce: @escaping @Sendable (ResponseWriter) async throws -> Void) -> Response {
        var response = Response(status: status, headers: ["Content-Type": contentType, "X-Accel-Buffering": "no"])
        response.stream = ResponseStream(produce: produce)
        return response
    }

    /// A stream of server-sent events (`text/event-stream`), for a page's
    /// `EventSource`.
    ///
    /// ```swift
    /// router.get("/live") { request in
    ///     let since = Int(request.lastEventID ?? "") ?? 0
    ///     return .events { events in
    ///         for await note in feed.notes(after: since) {
    ///             try await events.send(data: note.text, id: String(note.id))
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - retry: the browser's reconnection delay, sent first, if given.
    ///   - heartbeat: a comment line after this long without an event, so
    ///     that proxies (nginx's `fastcgi_read_timeout`, 60 s) keep an idle
    ///     stream open.
    ///   - produce: sends the events; the stream ends when it returns.
    public static func events(retry: Duration? = nil, heartbeat: Duration = .seconds(15),
                              _ produce: @escaping @Sendable (EventWriter) async throws -> Void) -> Response {
        var response = Response(status: .ok, headers: [
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        ])
        response.stream = ResponseStream(heartbeat: (heartbeat, Array(": heartbeat\n\n".utf8))) { writer in
            if let retry { try await writer.write("retry: \(ServerSentEvent.milliseconds(retry))\n\n") }
            try await produce(EventWriter(writer: writer))
        }
        return response
    }
}

extension Request {
    /// The id of the last server-sent event the browser got, which it sends
    /// back when it reconnects (`Last-Event-ID`).
    public var lastEventID: String? { headers["Last-Event-ID"] }
}
