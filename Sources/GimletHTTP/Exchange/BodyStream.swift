/// A request body as it comes off its transport, chunk by chunk, within
/// the host's limit: what ``RequestBody`` reads, whether it collects the
/// body before the handler or hands the chunks to it.
package final class BodyStream {
    /// How reading ended, once it has.
    package enum Ending: Equatable, Sendable {
        /// Every byte was read.
        case complete
        /// Over the limit; the rest was drained.
        case tooLarge
        /// The stream ended, stalled or failed before the announced length.
        case short(received: Int, expected: Int?, reason: String)
        /// Not read to its end (the handler stopped early, or a refusal); drained.
        case abandoned
    }

    private let channel: any ExchangeChannel
    /// `CONTENT_LENGTH`, when the web server sent one.
    package let expected: Int?
    /// The most bytes accepted.
    package let limit: Int
    /// Bytes read so far.
    package private(set) var received = 0
    /// `nil` while more may come.
    package private(set) var ending: Ending?

    /// A body of `expected` bytes (or to the end of the stream when `nil`), at most `limit`.
    package init(channel: any ExchangeChannel, expected: Int?, limit: Int) {
        self.channel = channel
        self.expected = expected
        self.limit = limit
    }

    /// The next chunk of at most `maximum` bytes, `nil` once the body is over.
    ///
    /// - Throws: ``BodyStreamError``: over the limit (what is left is
    ///   drained), or the body ended early.
    package func next(maximum: Int = 64 * 1024) throws(BodyStreamError) -> [UInt8]? {
        if let ending { return try finished(ending) }
        var wanted = max(1, maximum)
        if let expected {
            let left = expected - received
            guard left > 0 else {
                channel.drainBody()   // FastCGI's closing empty record; nothing for SCGI
                ending = .complete
                return nil
            }
            wanted = min(wanted, left)
        } else {
            // One byte past the limit shows a body that is over it.
            wanted = min(wanted, limit - received + 1)
        }
        var chunk: [UInt8] = []
        switch channel.readBody(into: &chunk, maximum: wanted) {
        case .bytes:
            received += chunk.count
            if received > limit {
                channel.drainBody()
                ending = .tooLarge
                throw .tooLarge(limit: limit)
            }
            return chunk
        case .end:
            if let expected, received < expected {
                let ended = Ending.short(received: received, expected: expected, reason: "the web server ended the stream")
                ending = ended
                return try finished(ended)
            }
            ending = .complete
            return nil
        case .failed(let reason):
            let ended = Ending.short(received: received, expected: expected, reason: reason)
            ending = ended
            return try finished(ended)
        }
    }

    /// Reads and drops what is left, so the web server reads the answer
    /// rather than a reset; the body counts as abandoned.
    package func drain() {
        guard ending == nil else { return }
        channel.drainBody()
        ending = .abandoned
    }

    private func finished(_ ending: Ending) throws(BodyStreamError) -> [UInt8]? {
        switch ending {
        case .complete: return nil
        case .tooLarge: throw .tooLarge(limit: limit)
        case .short(let received, let expected, let reason): throw .short(received: received, expected: expected, reason: reason)
        case .abandoned: throw .abandoned
        }
    }
}

@available(*, unavailable)
extension BodyStream: Sendable {}

/// Why a request body could not be read.
package enum BodyStreamError: Error, Equatable, Sendable {
    case tooLarge(limit: Int)
    case short(received: Int, expected: Int?, reason: String)
    case abandoned
}
