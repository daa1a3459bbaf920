@_spi(GimletInlined) import GimletSystem
import Glibc

/// A file log lines are appended to, one `write(2)` per call (a line, or
/// the access log's batch of whole lines), so lines of concurrent threads
/// and worker processes never interleave (`O_APPEND`).
///
/// ``reopen()`` (on `SIGUSR1`, after logrotate moved the file) opens the
/// path again and puts the new file on the same descriptor with `dup2`,
/// which is atomic: a thread writing meanwhile writes whole lines to the
/// old file or to the new one, never to a closed descriptor.
final class LogFile: Sendable {
    /// Where lines go; `nil` for standard output or standard error as inherited.
    let path: String?
    private let descriptor: Int32

    /// Opens `path` for appending (created with mode 640).
    ///
    /// - Throws: ``HostConfigurationError`` saying why it cannot be opened.
    init(path: String, purpose: String) throws(HostConfigurationError) {
        self.path = path
        descriptor = try Self.open(path, purpose: purpose)
    }

    /// Standard output (`--access-log -`).
    static let standardOutput = LogFile(inherited: STDOUT_FILENO)
    /// Standard error, wherever it points (`--log-file` points it at a file).
    static let standardError = LogFile(inherited: STDERR_FILENO)

    private init(inherited descriptor: Int32) {
        path = nil
        self.descriptor = descriptor
    }

    deinit {
        if path != nil { SystemCall.close(descriptor) }
    }

    /// Appends `line` (which ends in a newline); a line that cannot be
    /// written (disk full) is dropped: logging never stops a request.
    func write(_ line: [UInt8]) {
        line.withUnsafeBytes { buffer in _ = try? SystemCall.writeAll(descriptor, buffer, socket: false) }
    }

    /// Opens the path again and swaps the new file in (logrotate's `postrotate`).
    ///
    /// - Throws: ``HostConfigurationError`` if the path cannot be opened;
    ///   lines keep going to the old file then.
    func reopen() throws(HostConfigurationError) {
        guard let path else { return }
        let fresh = try Self.open(path, purpose: "log file")
        defer { SystemCall.close(fresh) }
        do {
            _ = try SystemCall.retrying("dup2") { dup2(fresh, descriptor) }
        } catch {
            throw HostConfigurationError("cannot reopen \(path): \(error)")
        }
    }

    /// Points standard error at `path` (`--log-file`), appending.
    static func sendStandardError(to path: String) throws(HostConfigurationError) {
        let fresh = try open(path, purpose: "log file")
        defer { SystemCall.close(fresh) }
        do {
            _ = try SystemCall.retrying("dup2") { dup2(fresh, STDERR_FILENO) }
        } catch {
            throw HostConfigurationError("cannot send standard error to \(path): \(error)")
        }
    }

    private static func open(_ path: String, purpose: String) throws(HostConfigurationError) -> Int32 {
        do {
            return try SystemCall.retrying("open") { Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
        } catch {
            throw HostConfigurationError("cannot open the \(purpose) \(path): \(systemErrorDescription(error.errno)); check that its directory exists and this user may write there")
        }
    }
}

/// The wall clock, for log lines.
enum WallClock {
    /// Now in UTC, ISO 8601 with milliseconds: `2026-11-22T10:15:02.123Z`.
    static func timestamp() -> String {
        let (second, millisecond) = now()
        var bytes = secondText(second)
        bytes.append(UInt8(ascii: "."))
        appendDigits(millisecond, 3, to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Now: seconds since the epoch, and the millisecond within that second.
    static func now() -> (second: Int, millisecond: Int) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (now.tv_sec, now.tv_nsec / 1_000_000)
    }

    /// The second `second` (since the epoch) in UTC: `2026-11-22T10:15:02`.
    static func secondText(_ second: Int) -> [UInt8] {
        var parts = tm()
        var seconds = second
        gmtime_r(&seconds, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendDigits(Int(parts.tm_year) + 1900, 4, to: &bytes); bytes.append(UInt8(ascii: "-"))
        appendDigits(Int(parts.tm_mon) + 1, 2, to: &bytes); bytes.append(UInt8(ascii: "-"))
        appendDigits(Int(parts.tm_mday), 2, to: &bytes); bytes.append(UInt8(ascii: "T"))
        appendDigits(Int(parts.tm_hour), 2, to: &bytes); bytes.append(UInt8(ascii: ":"))
        appendDigits(Int(parts.tm_min), 2, to: &bytes); bytes.append(UInt8(ascii: ":"))
        appendDigits(Int(parts.tm_sec), 2, to: &bytes)
        return bytes
    }

    /// `value`'s last `count` decimal digits, zero-padded.
    private static func appendDigits(_ value: Int, _ count: Int, to bytes: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }
}
