// The one door for Gimlet's own system calls (sockets, descriptors,
// processes): errno is read at once, EINTR is retried here and nowhere
// else, and a failure names its call. The C libraries' wrappers (libfcgi,
// hiredis, sqlite3, libcrypto) keep their own error handling.
import Glibc

/// A system call that failed: the call, as the code wrote it, and `errno`.
///
/// Its description reads `setsockopt(SO_RCVTIMEO): Bad file descriptor (errno 9)`.
@_spi(GimletInlined) public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call, with its distinguishing argument where one name covers
    /// several uses (`setsockopt(SO_RCVTIMEO)`, `fcntl(O_NONBLOCK)`).
    public let call: String
    /// The `errno` it left.
    public let errno: Int32

    /// A failure of `call` that left `errno`.
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(systemErrorDescription(errno)) (errno \(errno))" }
}

/// `strerror` as a Swift string.
package func systemErrorDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// The number of cores this process may run on.
package func activeProcessorCount() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

/// How Gimlet calls the system: each helper takes the call's name and the
/// call itself, in the C convention of returning -1 and setting `errno`.
///
/// ```swift
/// let count = try SystemCall.retrying("read") { Glibc.read(fd, base, maximum) }
/// ```
///
/// Public only as SPI, so that the retrying helpers, which run on every
/// request, are inlined into the targets that call them (no `package`
/// body is: see ARCHITECTURE.md); the rest is `package`.
@_spi(GimletInlined) public enum SystemCall {
    /// Runs `call`, again while it is interrupted by a signal (`EINTR`).
    ///
    /// - Throws: ``SystemCallError`` for any other failure.
    @inlinable
    public static func retrying<Result: BinaryInteger>(_ name: String, _ call: () -> Result) throws(SystemCallError) -> Result {
        while true {
            let result = call()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemCallError(name, errno: code)
        }
    }

    /// ``retrying(_:_:)`` for a non-blocking descriptor or one with a
    /// timeout: `nil` when the call would block (`EAGAIN`) or timed out.
    @inlinable
    public static func unlessWouldBlock<Result: BinaryInteger>(_ name: String, _ call: () -> Result) throws(SystemCallError) -> Result? {
        while true {
            let result = call()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw SystemCallError(name, errno: code)
        }
    }

    /// Runs a call that is not retried: one that cannot be interrupted, or
    /// one whose retry would be wrong.
    ///
    /// - Throws: ``SystemCallError`` when it returns -1.
    @inlinable
    public static func once<Result: BinaryInteger>(_ name: String, _ call: () -> Result) throws(SystemCallError) -> Result {
        let result = call()
        guard result == -1 else { return result }
        throw SystemCallError(name, errno: errno)
    }

    /// For the calls that return an error number instead of setting `errno`
    /// (`posix_spawn`, the `pthread_` family).
    ///
    /// - Throws: ``SystemCallError`` when `result` is not 0.
    package static func check(_ name: String, returned result: Int32) throws(SystemCallError) {
        guard result == 0 else { throw SystemCallError(name, errno: result) }
    }

    /// Closes `fd`, never retried: Linux releases the descriptor even when
    /// `close` is interrupted, and a retry could close another thread's new one.
    package static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets an integer or struct socket option.
    ///
    /// - Throws: ``SystemCallError`` naming the option (`name`).
    package static func setSocketOption<Value: BitwiseCopyable>(_ fd: Int32, level: Int32, _ option: Int32,
                                                                _ value: Value, name: String) throws(SystemCallError) {
        _ = try withUnsafeBytes(of: value) { (bytes) throws(SystemCallError) in
            try once("setsockopt(\(name))") { setsockopt(fd, level, option, bytes.baseAddress, socklen_t(bytes.count)) }
        }
    }

    /// Reads an integer socket option, `nil` if the call fails (not a socket).
    package static func socketOption(_ fd: Int32, level: Int32, _ option: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, option, &value, &length) == 0 ? value : nil
    }

    /// Sets `flag` among the status flags (`O_NONBLOCK`) or, with
    /// `descriptorFlags`, the descriptor flags (`FD_CLOEXEC`) of `fd`.
    ///
    /// - Throws: ``SystemCallError`` naming `name`.
    package static func addFlag(_ flag: Int32, to fd: Int32, descriptorFlags: Bool = false,
                                name: String) throws(SystemCallError) {
        let (get, set) = descriptorFlags ? (F_GETFD, F_SETFD) : (F_GETFL, F_SETFL)
        let flags = try once("fcntl(\(name))") { fcntl(fd, get) }
        _ = try once("fcntl(\(name))") { fcntl(fd, set, flags | flag) }
    }

    /// Writes all of `bytes` to a blocking descriptor (or one with a send
    /// timeout), retrying interrupted and short writes.
    ///
    /// - Parameter socket: sends with `MSG_NOSIGNAL`, so a peer that went
    ///   away is an `EPIPE` failure, never a `SIGPIPE`.
    /// - Throws: ``SystemCallError``; `EAGAIN` is a timed-out send.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool) throws(SystemCallError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = try retrying(socket ? "send" : "write") {
                socket ? send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                       : Glibc.write(fd, base + offset, bytes.count - offset)
            }
            guard written > 0 else { throw SystemCallError(socket ? "send" : "write", errno: EIO) }
            offset += written
        }
    }

    /// Creates an empty file at `path` with exactly `mode` (the umask not
    /// applied), unless something is there already; `false` then.
    ///
    /// - Throws: ``SystemCallError`` for anything but an existing file.
    package static func createFileIfAbsent(_ path: String, mode: UInt32) throws(SystemCallError) -> Bool {
        let fd: Int32
        do {
            fd = try retrying("open(O_CREAT|O_EXCL)") {
                open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode_t(mode))
            }
        } catch where error.errno == EEXIST {
            return false
        }
        // The umask may have taken bits off: the mode asked for, exactly.
        _ = try? once("fchmod") { fchmod(fd, mode_t(mode)) }
        close(fd)
        return true
    }

    /// The permission bits of the file at `path` (links followed); `nil` if it cannot be read.
    package static func permissionBits(of path: String) -> UInt32? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode) & 0o7777
    }

    /// This process's id.
    package static var processID: Int32 { getpid() }

    /// Raises the soft limit on open files to the hard one (every open
    /// stream holds a descriptor); the limit before and after.
    package static func raiseOpenFileLimit() -> (before: Int, after: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        let before = Int(clamping: limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
        return (before, Int(clamping: limit.rlim_max))
    }

    /// The soft limit on open files.
    package static var openFileLimit: Int {
        var limit = rlimit()
        return getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
    }

    /// Sleeps the calling thread for `microseconds` (an interrupted sleep ends early).
    package static func sleep(microseconds: Int) {
        _ = usleep(UInt32(clamping: max(0, microseconds)))
    }

    /// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine.
    package static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Seconds since 1970 on the wall clock.
    package static func wallClockSeconds() -> Int {
        max(0, time(nil))
    }
}
