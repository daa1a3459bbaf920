// The system calls of file downloads: resolving a path under a root, a
// file's size and time, and reading a region of it to send.
@_spi(GimletInlined) import GimletSystem
import Glibc

/// A region of a file sent as a response's body by the host itself, in
/// chunks, in bounded memory (see ``FileDownloads``).
public struct ResponseFile: Sendable, Equatable {
    /// The file's absolute, resolved path.
    public let path: String
    /// Where the region starts.
    public let offset: Int
    /// How many bytes it has.
    public let length: Int
    /// The file's size when the response was made: a file that changed
    /// size since is not sent (its `Content-Length` would be wrong).
    let size: Int

    /// Calls `write` with the region's bytes, in chunks of at most 256 KiB;
    /// stops when `write` returns `false` (the web server went away).
    ///
    /// - Returns: `nil` when the whole region was handed to `write` (or
    ///   `write` stopped), else why the file could not be read.
    func send(_ write: ([UInt8]) -> Bool) -> String? {
        let fd: Int32
        do throws(SystemCallError) {
            fd = try SystemCall.retrying("open") { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            return "\(error)"
        }
        defer { SystemCall.close(fd) }
        guard let info = FileInfo(descriptor: fd), info.size == size else { return "the file changed size since the response was made" }
        var sent = 0
        while sent < length {
            let wanted = min(length - sent, 256 * 1024)
            var failure: Int32 = 0
            let chunk = [UInt8](unsafeUninitializedCapacity: wanted) { buffer, count in
                count = 0
                guard let base = buffer.baseAddress else { return }
                do throws(SystemCallError) {
                    count = try SystemCall.retrying("pread") { pread(fd, base, wanted, off_t(offset + sent)) }
                } catch {
                    failure = error.errno
                }
            }
            if failure != 0 { return "pread: \(systemErrorDescription(failure))" }
            if chunk.isEmpty { return "the file ended early" }
            guard write(chunk) else { return nil }
            sent += chunk.count
        }
        return nil
    }
}

/// What a download needs to know of a file.
struct FileInfo: Equatable {
    var size: Int
    var modifiedSeconds: Int64
    var modifiedNanoseconds: Int64
    var isRegular: Bool

    init(size: Int, modifiedSeconds: Int64, modifiedNanoseconds: Int64, isRegular: Bool) {
        self.size = size
        self.modifiedSeconds = modifiedSeconds
        self.modifiedNanoseconds = modifiedNanoseconds
        self.isRegular = isRegular
    }

    /// The file at `path`, following symbolic links; `nil` if there is none.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    init?(descriptor: Int32) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        self.init(info)
    }

    private init(_ info: stat) {
        size = Int(info.st_size)
        modifiedSeconds = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        isRegular = (info.st_mode & S_IFMT) == S_IFREG
    }
}

enum FilePaths {
    /// `path` with every symbolic link and `..` resolved, `nil` when it does not exist.
    static func resolved(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
