// The system calls of TemporaryFile: an unnamed file in a directory, its
// reads and writes, and the link that gives it a name.
@_spi(GimletInlined) import GimletSystem
import Glibc

/// A private file without a name, for a request body (or a multipart file
/// part) too large to keep in memory.
///
/// It is made with `O_TMPFILE` (mode 0600) in the directory the host was
/// given (`--body-temp-dir`): it never appears in that directory, and it is
/// gone when it is closed, which happens when the request ends, whatever
/// ended it (an error, a killed thread of a process that goes on, the
/// process itself killed). On a file system without `O_TMPFILE` it is made
/// with `mkstemp` and unlinked at once, to the same effect.
///
/// A handler that wants to keep the bytes gives the file a name with
/// ``keep(at:mode:)``:
///
/// ```swift
/// router.post("/avatar", options: .streamBody) { request in
///     let file = try request.body.spool()
///     try file.keep(at: "/var/lib/app/avatars/\(UUID())")
///     return .text("stored \(file.count) bytes")
/// }
/// ```
///
/// Used by the one worker thread that serves its request; not `Sendable`.
public final class TemporaryFile {
    /// The bytes written so far.
    public private(set) var count = 0
    /// The open descriptor; -1 once closed.
    private var descriptor: Int32
    /// Whether the file was made with `O_TMPFILE` (and can be linked into a directory).
    private let linkable: Bool

    /// Makes an unnamed file in `directory`.
    ///
    /// - Throws: ``TemporaryFileError`` when the directory is missing or not writable.
    package init(directory: String) throws(TemporaryFileError) {
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; Glibc's Swift module has
        // neither (they are _GNU_SOURCE), and __O_TMPFILE is 0o20000000 on
        // every Linux architecture Swift runs on.
        let flags = 0o20000000 | O_DIRECTORY | O_RDWR | O_CLOEXEC
        do throws(SystemCallError) {
            descriptor = try SystemCall.retrying("open(O_TMPFILE)") { open(directory, flags, mode_t(0o600)) }
            linkable = true
            return
        } catch {
            // A missing or closed directory is the operator's to fix; say so.
            guard error.errno == EOPNOTSUPP || error.errno == EISDIR || error.errno == EINVAL else {
                throw TemporaryFileError("make a temporary file in \(directory)", errno: error.errno)
            }
        }
        // No O_TMPFILE on this file system: a named file, unlinked before
        // anyone could open it.
        var template = Array((directory.hasSuffix("/") ? directory : directory + "/").utf8CString.dropLast())
            + Array("gimlet-body-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        guard fd >= 0 else { throw TemporaryFileError("make a temporary file in \(directory)", errno: errno) }
        template.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            _ = unlink(base)
        }
        try? SystemCall.addFlag(FD_CLOEXEC, to: fd, descriptorFlags: true, name: "FD_CLOEXEC")
        descriptor = fd
        linkable = false
    }

    deinit { close() }

    /// Closes the file: it is gone, unless ``keep(at:mode:)`` named it.
    package func close() {
        guard descriptor >= 0 else { return }
        SystemCall.close(descriptor)
        descriptor = -1
    }

    /// Appends `bytes`.
    ///
    /// - Throws: ``TemporaryFileError`` (a full disk: `ENOSPC`).
    package func append(_ bytes: [UInt8]) throws(TemporaryFileError) {
        try checkOpen("write")
        let result = Self.write(bytes, to: descriptor)
        guard result == 0 else { throw TemporaryFileError("write", errno: result) }
        count += bytes.count
    }

    /// Writes all of `bytes` to `fd`: 0, or the `errno` of the failure.
    private static func write(_ bytes: [UInt8], to fd: Int32) -> Int32 {
        bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Int32 in
            do throws(SystemCallError) {
                try SystemCall.writeAll(fd, buffer, socket: false)
                return 0
            } catch {
                return error.errno
            }
        }
    }

    /// Reads up to `maximum` bytes from `offset`; fewer only at the end.
    ///
    /// - Throws: ``TemporaryFileError`` once the request has ended (the file is closed).
    public func read(at offset: Int, maximum: Int) throws(TemporaryFileError) -> [UInt8] {
        try checkOpen("read")
        let wanted = max(0, min(maximum, count - offset))
        guard wanted > 0 else { return [] }
        let fd = descriptor
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            while initialized < wanted {
                do throws(SystemCallError) {
                    let got = try SystemCall.retrying("pread") {
                        pread(fd, base + initialized, wanted - initialized, off_t(offset + initialized))
                    }
                    if got == 0 { return }
                    initialized += got
                } catch {
                    failure = error.errno
                    return
                }
            }
        }
        if failure != 0 { throw TemporaryFileError("read", errno: failure) }
        return bytes
    }

    /// Calls `body` with the file's bytes, in order, in chunks of at most `chunkSize`.
    ///
    /// - Throws: ``TemporaryFileError``, or what `body` threw.
    public func forEachChunk(chunkSize: Int = 64 * 1024, _ body: ([UInt8]) throws -> Void) throws {
        var offset = 0
        while offset < count {
            let chunk = try read(at: offset, maximum: max(1, chunkSize))
            if chunk.isEmpty { break }
            offset += chunk.count
            try body(chunk)
        }
    }

    /// Gives the file the name `path`, so it outlives the request: a link
    /// where the file system allows (no copy), else a copy. The new file has
    /// mode `mode` (0600 unless told); an existing file at `path` is an error.
    ///
    /// - Throws: ``TemporaryFileError`` (the directory missing, `path` taken, a full disk).
    public func keep(at path: String, mode: UInt32 = 0o600) throws(TemporaryFileError) {
        try checkOpen("keep")
        if linkable {
            // A file made with O_TMPFILE is named through /proc (no privilege needed, unlike AT_EMPTY_PATH).
            let source = "/proc/self/fd/\(descriptor)"
            var linked = false
            do throws(SystemCallError) {
                _ = try SystemCall.retrying("linkat") { linkat(AT_FDCWD, source, AT_FDCWD, path, AT_SYMLINK_FOLLOW) }
                linked = true
            } catch {
                // EXDEV (another file system), ENOENT (no /proc): copy instead; anything else is the caller's.
                guard error.errno == EXDEV || error.errno == ENOENT || error.errno == EPERM else {
                    throw TemporaryFileError("link \(path)", errno: error.errno)
                }
            }
            if linked {
                do throws(SystemCallError) {
                    _ = try SystemCall.retrying("chmod") { chmod(path, mode_t(mode)) }
                } catch {
                    throw TemporaryFileError("chmod \(path)", errno: error.errno)
                }
                return
            }
        }
        try copy(to: path, mode: mode)
    }

    private func copy(to path: String, mode: UInt32) throws(TemporaryFileError) {
        let target: Int32
        do throws(SystemCallError) {
            target = try SystemCall.retrying("open") { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode)) }
        } catch {
            throw TemporaryFileError("create \(path)", errno: error.errno)
        }
        var offset = 0
        var failure: TemporaryFileError?
        while offset < count, failure == nil {
            do throws(TemporaryFileError) {
                let chunk = try read(at: offset, maximum: 1 << 20)
                if chunk.isEmpty { break }
                let written = Self.write(chunk, to: target)
                if written != 0 { failure = TemporaryFileError("write \(path)", errno: written) }
                offset += chunk.count
            } catch {
                failure = error
            }
        }
        SystemCall.close(target)
        if let failure {
            _ = unlink(path)
            throw failure
        }
    }

    private func checkOpen(_ operation: String) throws(TemporaryFileError) {
        guard descriptor >= 0 else { throw TemporaryFileError("\(operation): the request has ended and its file is gone", errno: EBADF) }
    }
}

@available(*, unavailable)
extension TemporaryFile: Sendable {}

/// A temporary file could not be made, written, read or kept.
public struct TemporaryFileError: Error, Sendable, CustomStringConvertible {
    /// What was done, with the path where there is one.
    public let operation: String
    /// The `errno` it left.
    public let errno: Int32

    package init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "temporary file: \(operation): \(systemErrorDescription(errno))" }
}
