extension Session {
    static func flashKey(_ queue: String) -> String { "_f_" + queue }

    /// Queues a message for the next request that pops it (after a redirect, say).
    ///
    /// ```swift
    /// session.flash("Saved.")
    /// // next request:
    /// for message in session.popFlash() { … }
    /// ```
    ///
    /// - Parameters:
    ///   - message: the message to show on a later page.
    ///   - queue: a named queue; `""` by default.
    ///   - allowDuplicate: when `false`, a message already queued is not added again.
    /// - Throws: a backend failure when the queue is server-side and had to be loaded.
    public func flash(_ message: String, queue: String = "", allowDuplicate: Bool = true) throws {
        let key = Self.flashKey(queue)
        var messages = try get(key)?.arrayValue ?? []
        if allowDuplicate || !messages.contains(.string(message)) {
            messages.append(.string(message))
            self[key] = .array(messages)
        }
    }

    /// Removes and returns the queued messages.
    public func popFlash(queue: String = "") throws -> [String] {
        (try remove(Self.flashKey(queue)))?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Returns the queued messages, leaving them queued.
    public func peekFlash(queue: String = "") throws -> [String] {
        (try get(Self.flashKey(queue)))?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}
