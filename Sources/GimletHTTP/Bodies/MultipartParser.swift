/// A push parser for `multipart/form-data` (RFC 7578, on RFC 2046's
/// framing): fed the body chunk by chunk as it arrives, it reports each
/// part's head, its bytes and its end, holding at most one part head and a
/// delimiter's length of bytes, whatever the size of the parts.
///
/// Malformed input (no opening delimiter, a head without its blank line, a
/// missing `Content-Disposition` or `name`, a body that stops before the
/// closing delimiter) and input past the limits throw ``MultipartError``;
/// the parser never crashes or waits for more than it was fed.
package struct MultipartParser {
    /// What the parser found.
    package enum Event {
        /// A part begins; its bytes follow.
        case part(MultipartHead)
        /// Bytes of the current part, in order (a part may come in many pieces).
        case bytes(ArraySlice<UInt8>)
        /// The current part ended.
        case partEnd
    }

    private enum State {
        /// Before the first delimiter (a preamble is allowed, and ignored).
        case preamble
        /// Right after a delimiter: CRLF (a part follows) or `--` (the end).
        case afterDelimiter
        /// Reading a part's head, up to its blank line.
        case head
        /// Reading a part's bytes, up to the next delimiter.
        case body
        /// After the closing delimiter: the epilogue, ignored.
        case done
    }

    private let limits: MultipartLimits
    /// `\r\n--boundary`: what ends a part. The first delimiter may come without its CRLF.
    private let delimiter: [UInt8]
    private var state = State.preamble
    /// Bytes fed and not yet consumed, from `start`.
    private var buffer: [UInt8] = []
    private var start = 0
    private var parts = 0
    /// Bytes of the current part's head so far (its limit), or of the preamble/epilogue.
    private var skipped = 0

    /// A parser for the body of `contentType`, which must be
    /// `multipart/form-data` with a valid `boundary`.
    ///
    /// - Throws: ``MultipartError`` when it is not.
    package init(contentType: String, limits: MultipartLimits) throws(MultipartError) {
        guard mediaTypeIs(contentType, "multipart/form-data") else {
            throw MultipartError(.notMultipart, "expected a multipart/form-data body")
        }
        guard let boundary = Self.boundary(in: contentType) else {
            throw MultipartError(.malformed, "the Content-Type has no valid boundary")
        }
        self.limits = limits
        self.delimiter = Array("\r\n--".utf8) + Array(boundary.utf8)
    }

    /// The `boundary` parameter of a `Content-Type`: 1 to 70 of RFC 2046's
    /// characters, quoted or not; `nil` otherwise.
    static func boundary(in contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingASCIISpaces().lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingASCIISpaces()
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
            guard (1...70).contains(value.utf8.count), value.utf8.allSatisfy({ allowed.contains($0) }),
                  value.utf8.last != UInt8(ascii: " ")
            else { return nil }
            return value
        }
        return nil
    }

    /// Parses `chunk`, reporting what it completes to `handle`.
    ///
    /// - Throws: ``MultipartError``, or what `handle` threw.
    package mutating func feed(_ chunk: [UInt8], _ handle: (Event) throws -> Void) throws {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(..<start)
            start = 0
        }
        buffer += chunk
        while try step(handle) {}
    }

    /// The body ended: it must have ended with the closing delimiter.
    ///
    /// - Throws: ``MultipartError`` for a body cut short.
    package func finish() throws(MultipartError) {
        switch state {
        case .done: return
        case .preamble: throw MultipartError(.malformed, "no multipart delimiter in the body")
        case .afterDelimiter, .head, .body: throw MultipartError(.malformed, "the body ended inside a part (no closing delimiter)")
        }
    }

    /// One step; `false` when it needs more bytes.
    private mutating func step(_ handle: (Event) throws -> Void) throws -> Bool {
        switch state {
        case .preamble:
            // The first delimiter opens the body, or follows a preamble line.
            let opening = Array(delimiter.dropFirst(2))
            if skipped == 0, buffer.count - start >= opening.count, buffer[start..<start + opening.count].elementsEqual(opening) {
                start += opening.count
                state = .afterDelimiter
                return true
            }
            guard let found = find(delimiter, from: start) else {
                let keep = delimiter.count - 1
                let dropped = max(0, buffer.count - start - keep)
                skipped += dropped
                start += dropped
                if skipped > limits.maxHeaderBytes { throw MultipartError(.malformed, "no multipart delimiter where the body starts") }
                return false
            }
            start = found + delimiter.count
            state = .afterDelimiter
            return true
        case .afterDelimiter:
            guard buffer.count - start >= 2 else { return false }
            let next = (buffer[start], buffer[start + 1])
            if next == (UInt8(ascii: "-"), UInt8(ascii: "-")) {
                state = .done
                start = buffer.count
                return false
            }
            // Transport padding (spaces, tabs) may precede the CRLF (RFC 2046 §5.1.1).
            var index = start
            while index < buffer.count, buffer[index] == UInt8(ascii: " ") || buffer[index] == UInt8(ascii: "\t") {
                index += 1
                guard index - start <= 64 else { throw MultipartError(.malformed, "a multipart delimiter is followed by garbage") }
            }
            guard buffer.count - index >= 2 else { return false }
            guard buffer[index] == 13, buffer[index + 1] == 10 else {
                throw MultipartError(.malformed, "a multipart delimiter is followed by garbage")
            }
            parts += 1
            guard parts <= limits.maxParts else {
                throw MultipartError(.tooLarge, "more than \(limits.maxParts) parts in the form")
            }
            start = index + 2
            skipped = 0
            state = .head
            return true
        case .head:
            let end = find([13, 10, 13, 10], from: start)
            // A part with no header line at all starts with the blank line itself.
            let blankFirst = buffer.count - start >= 2 && buffer[start] == 13 && buffer[start + 1] == 10
            guard blankFirst || end != nil else {
                if buffer.count - start > limits.maxHeaderBytes {
                    throw MultipartError(.tooLarge, "a part's headers are longer than \(limits.maxHeaderBytes) bytes")
                }
                return false
            }
            let headEnd = blankFirst ? start : (end ?? start)
            guard headEnd - start <= limits.maxHeaderBytes else {
                throw MultipartError(.tooLarge, "a part's headers are longer than \(limits.maxHeaderBytes) bytes")
            }
            let head = try MultipartHead(parsing: buffer[start..<headEnd])
            start = headEnd + (blankFirst ? 2 : 4)
            state = .body
            try handle(.part(head))
            return true
        case .body:
            if let found = find(delimiter, from: start) {
                if found > start { try handle(.bytes(buffer[start..<found])) }
                try handle(.partEnd)
                start = found + delimiter.count
                state = .afterDelimiter
                return true
            }
            // Everything but a possible start of the delimiter is the part's.
            let safe = buffer.count - (delimiter.count - 1)
            if safe > start {
                try handle(.bytes(buffer[start..<safe]))
                start = safe
            }
            return false
        case .done:
            start = buffer.count
            return false
        }
    }

    /// Where `needle` next occurs in the buffer at or after `from`.
    private func find(_ needle: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, buffer.count - from >= needle.count else { return nil }
        var index = from
        let last = buffer.count - needle.count
        while index <= last {
            guard let candidate = buffer[index...last].firstIndex(of: first) else { return nil }
            if buffer[candidate..<candidate + needle.count].elementsEqual(needle) { return candidate }
            index = candidate + 1
        }
        return nil
    }
}

/// The head of one part of a `multipart/form-data` body.
package struct MultipartHead: Equatable, Sendable {
    /// The form field's name.
    package var name: String
    /// The file's name as the client gave it, for a file part; data, never a path.
    package var filename: String?
    /// The part's `Content-Type`, if given.
    package var contentType: String?

    /// Parses the header lines of a part.
    init(parsing lines: ArraySlice<UInt8>) throws(MultipartError) {
        var disposition: String?
        var contentType: String?
        for line in lines.split(separator: 10, omittingEmptySubsequences: false) {
            var line = line
            if line.last == 13 { line = line.dropLast() }
            guard !line.isEmpty else { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw MultipartError(.malformed, "a part's header line has no colon")
            }
            guard let name = UTF8Text.string(Array(line[..<colon])), let value = UTF8Text.string(Array(line[(colon + 1)...])) else {
                throw MultipartError(.malformed, "a part's header is not UTF-8")
            }
            guard !value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                throw MultipartError(.malformed, "a part's header has a control character")
            }
            switch name.lowercased() {
            case "content-disposition": disposition = value.trimmingASCIISpaces()
            case "content-type": contentType = value.trimmingASCIISpaces()
            default: break
            }
        }
        guard let disposition else { throw MultipartError(.malformed, "a part has no Content-Disposition") }
        let parameters = Self.parameters(of: disposition)
        guard disposition.split(separator: ";").first.map({ $0.trimmingASCIISpaces().lowercased() }) == "form-data" else {
            throw MultipartError(.malformed, "a part's Content-Disposition is not form-data")
        }
        guard let name = parameters["name"] else { throw MultipartError(.malformed, "a part has no name") }
        self.name = name
        self.filename = parameters["filename"]
        self.contentType = contentType.flatMap { $0.isEmpty ? nil : $0 }
    }

    init(name: String, filename: String?, contentType: String?) {
        self.name = name
        self.filename = filename
        self.contentType = contentType
    }

    /// The `key=value` parameters after the first `;`, values unquoted;
    /// keys lowercased; the first of a repeated key wins.
    static func parameters(of value: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(value)
        guard let semicolon = rest.firstIndex(of: ";") else { return result }
        rest = rest[rest.index(after: semicolon)...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == ";" }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingASCIISpaces().lowercased()
            rest = rest[rest.index(after: equals)...].drop { $0 == " " || $0 == "\t" }
            var parsed = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped { parsed.append(character); escaped = false; continue }
                    if character == "\\" { escaped = true; continue }
                    if character == "\"" { closed = true; break }
                    parsed.append(character)
                }
                if !closed { break }
                // Browsers escape a quote in a filename as %22 (the HTML spec); keep it as the client wrote it.
            } else {
                let end = rest.firstIndex(of: ";") ?? rest.endIndex
                parsed = rest[..<end].trimmingASCIISpaces()
                rest = rest[end...]
            }
            if result[key] == nil { result[key] = parsed }
        }
        return result
    }
}

/// What a `multipart/form-data` body may hold.
public struct MultipartLimits: Sendable, Equatable {
    /// The most parts (fields and files together).
    public var maxParts: Int
    /// The most bytes of one part's header lines.
    public var maxHeaderBytes: Int
    /// The most bytes of one text field (held in memory).
    public var maxFieldBytes: Int
    /// The most bytes of all text fields together (held in memory).
    public var maxFieldsBytes: Int

    /// Limits; every parameter has a default fit for a web form.
    public init(maxParts: Int = 100, maxHeaderBytes: Int = 8 * 1024, maxFieldBytes: Int = 64 * 1024,
                maxFieldsBytes: Int = 1 << 20) {
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
        self.maxFieldBytes = maxFieldBytes
        self.maxFieldsBytes = maxFieldsBytes
    }
}

/// A `multipart/form-data` body that is malformed or over a limit.
public struct MultipartError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem: each answers its own status.
    public enum Kind: Sendable, Equatable {
        /// Not `multipart/form-data` (`415`).
        case notMultipart
        /// Not valid multipart (`400`).
        case malformed
        /// Over a ``MultipartLimits`` limit (`413`).
        case tooLarge
    }

    /// The kind of problem.
    public let kind: Kind
    /// A short reason, fit for the client.
    public let reason: String

    init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }

    /// The answer it stands for: `415`, `400` or `413` with the reason.
    public var httpError: HTTPError {
        switch kind {
        case .notMultipart: HTTPError(.unsupportedMediaType, reason)
        case .malformed: HTTPError(.badRequest, "bad multipart body: " + reason)
        case .tooLarge: HTTPError(.payloadTooLarge, reason)
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    fileprivate func trimmingASCIISpaces() -> String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
