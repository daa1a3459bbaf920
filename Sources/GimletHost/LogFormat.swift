import Foundation
import Logging

/// How the host writes log lines (`--log-format`): the access log and
/// every swift-log line of the process.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// Access log: `key=value` pairs (logfmt); other lines: swift-log's
    /// stream format (`time level label : metadata message`).
    case text
    /// One JSON object per line, for journald, Loki, Elasticsearch and `jq`.
    case json
}

/// One log line being built: named fields in order, written as logfmt
/// (`key=value`, quoted where needed) or as one JSON object.
struct LogLine {
    private let format: LogFormat
    private var bytes: [UInt8]
    /// Where this line starts in `bytes` (after the lines it continues).
    private let start: Int

    init(_ format: LogFormat) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        self.init(format, after: &bytes)
    }

    /// A line written at the end of `lines` (a batch), in its buffer, which
    /// the line holds until ``finish(into:)`` gives it back: nothing is
    /// copied. (`swap`, not assignment: an array assigned from a stored
    /// property was still shared when the line appended to it, and every
    /// line copied the whole batch.)
    init(_ format: LogFormat, after lines: inout [UInt8]) {
        self.format = format
        bytes = []
        swap(&bytes, &lines)
        start = bytes.count
        if format == .json { bytes.append(UInt8(ascii: "{")) }
    }

    /// A text field (escaped, quoted in JSON, quoted in logfmt when needed).
    mutating func add(_ key: StaticString, _ value: String) {
        startField(key)
        switch format {
        case .json: appendJSONString(value)
        case .text: appendLogfmtValue(value)
        }
    }

    /// A number field, written bare in both formats.
    mutating func add(_ key: StaticString, number: String) {
        startField(key)
        bytes.append(contentsOf: number.utf8)
    }

    /// A whole number field, its digits written straight into the line.
    mutating func add(_ key: StaticString, integer: Int) {
        startField(key)
        appendDigits(integer)
    }

    /// A time in UTC, ISO 8601 with milliseconds (`2026-11-22T10:15:02.123Z`),
    /// from its second's text (`WallClock.secondText`) and the millisecond.
    mutating func add(_ key: StaticString, second: [UInt8], millisecond: Int) {
        startField(key)
        if format == .json { bytes.append(UInt8(ascii: "\"")) }
        bytes.append(contentsOf: second)
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(millisecond / 100 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(millisecond / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(millisecond % 10))
        bytes.append(UInt8(ascii: "Z"))
        if format == .json { bytes.append(UInt8(ascii: "\"")) }
    }

    /// A duration in milliseconds with three decimals (microseconds).
    mutating func add(_ key: StaticString, milliseconds duration: Duration) {
        startField(key)
        let micros = Int(clamping: duration.microseconds)
        appendDigits(micros / 1000)
        bytes.append(UInt8(ascii: "."))
        let fraction = micros % 1000
        bytes.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(fraction % 10))
    }

    private mutating func appendDigits(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var divisor: UInt = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        }
    }

    /// The line, newline included.
    func finished() -> [UInt8] {
        var line = bytes
        if format == .json { line.append(UInt8(ascii: "}")) }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Ends the line (newline included) and gives the buffer back to `lines`,
    /// the batch it was begun after.
    mutating func finish(into lines: inout [UInt8]) {
        if format == .json { bytes.append(UInt8(ascii: "}")) }
        bytes.append(UInt8(ascii: "\n"))
        swap(&bytes, &lines)
    }

    /// A text field whose key is not known until run time (a log line's
    /// metadata): in JSON the key is escaped as any string is; in logfmt
    /// it is written as it is (only JSON log lines have such keys).
    mutating func add(dynamicKey key: String, _ value: String) {
        switch format {
        case .json:
            if bytes.count > start + 1 { bytes.append(UInt8(ascii: ",")) }
            appendJSONString(key)
            bytes.append(UInt8(ascii: ":"))
            appendJSONString(value)
        case .text:
            if bytes.count > start { bytes.append(UInt8(ascii: " ")) }
            bytes.append(contentsOf: key.utf8)
            bytes.append(UInt8(ascii: "="))
            appendLogfmtValue(value)
        }
    }

    /// A field's separator and key: one of ours, plain ASCII, copied as it is.
    private mutating func startField(_ key: StaticString) {
        switch format {
        case .json:
            if bytes.count > start + 1 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(UInt8(ascii: ":"))
        case .text:
            if bytes.count > start { bytes.append(UInt8(ascii: " ")) }
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "="))
        }
    }

    private mutating func appendJSONString(_ value: String) { appendQuoted(value, json: true) }

    /// Bare when it is one printable word; otherwise quoted, so a value
    /// never breaks the line.
    private mutating func appendLogfmtValue(_ value: String) {
        let utf8 = value.utf8.span
        var bare = !utf8.isEmpty
        for index in utf8.indices {
            let byte = utf8[index]
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                || byte == UInt8(ascii: "=") {
                bare = false
                break
            }
        }
        if bare { bytes.append(contentsOf: value.utf8) } else { appendQuoted(value, json: false) }
    }

    /// `value` in double quotes, `"` and `\` escaped with a backslash, control
    /// bytes as `\u00HH` (JSON, which also has `\n` and `\t`) or `\xHH` (logfmt).
    private mutating func appendQuoted(_ value: String, json: Bool) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes.append(UInt8(ascii: "\\"))
                bytes.append(byte)
            case 0x0A where json: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x09 where json: bytes.append(contentsOf: #"\t"#.utf8)
            case ..<0x20, 0x7F: appendEscape(json ? "\\u00" : "\\x", byte)
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscape(_ prefix: String, _ byte: UInt8) {
        bytes.append(contentsOf: prefix.utf8)
        for nibble in [byte >> 4, byte & 0xF] {
            bytes.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
    }
}

/// swift-log lines on standard error, one `write` each, in `format`:
///
/// - `text`: `2026-11-22T10:15:02.123Z warning gimlet : key=value … [module] message`
///   (swift-log's stream format, with UTC milliseconds);
/// - `json`: one object with `time`, `level`, `label`, `pid`, `message`,
///   then the metadata.
///
/// Metadata is formatted only when a line is written. The request id, set
/// on every request's logger while the operator's tools are on, is kept
/// apart from the dictionary: an insert into a request's own copy of it
/// cost some 1,500 instructions.
struct HostLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadataProvider: Logger.MetadataProvider?
    /// Every metadata value but the request id.
    private var others: Logger.Metadata = [:]
    /// `request_id`'s value.
    private var requestID: Logger.Metadata.Value?
    private static let requestIDKey = "request_id"

    init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    var metadata: Logger.Metadata {
        get {
            var all = others
            if let requestID { all[Self.requestIDKey] = requestID }
            return all
        }
        set {
            others = newValue
            requestID = others.removeValue(forKey: Self.requestIDKey)
        }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { key == Self.requestIDKey ? requestID : others[key] }
        set {
            if key == Self.requestIDKey { requestID = newValue } else { others[key] = newValue }
        }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let sorted = all.sorted { $0.key < $1.key }
        switch format {
        case .text:
            var line = "\(WallClock.timestamp()) \(event.level) \(label) :"
            for (key, value) in sorted { line += " \(key)=\(value)" }
            line += " [\(event.source)] \(event.message)\n"
            LogFile.standardError.write(Array(line.utf8))
        case .json:
            var line = LogLine(.json)
            line.add("time", WallClock.timestamp())
            line.add("level", event.level.rawValue)
            line.add("label", label)
            line.add("pid", number: String(ProcessInfo.processInfo.processIdentifier))
            line.add("message", "\(event.message)")
            for (key, value) in sorted where !["time", "level", "label", "pid", "message"].contains(key) {
                line.add(dynamicKey: key, "\(value)")
            }
            LogFile.standardError.write(line.finished())
        }
    }
}
