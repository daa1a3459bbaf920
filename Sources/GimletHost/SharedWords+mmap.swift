// Shared memory between the supervisor and its workers: a file in /dev/shm,
// unlinked at once, mapped by each process. The only file of the host that
// touches raw memory.
@_spi(GimletInlined) import GimletSystem
import Glibc
import Synchronization

/// An array of 64-bit atomic words in memory shared by several processes.
///
/// Every access is an atomic load or store (relaxed unless said), so any
/// process may read any word at any time; the layout above it decides who
/// writes what (``Scoreboard``).
final class SharedWords: @unchecked Sendable {
    // @unchecked: the pointer and count never change after init, and every
    // access to the memory goes through Atomic, which is safe from any thread
    // (and, being lock-free on 64-bit words, from any process).
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    let count: Int
    /// The descriptor of the mapped file, for a child process to map too.
    let descriptor: Int32

    /// Creates `count` zeroed words in a new anonymous shared file.
    convenience init(count: Int) throws(HostConfigurationError) {
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(directory)/gimlet-scoreboard-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            Result { () throws(SystemCallError) in
                try SystemCall.retrying("mkstemp") { buffer.baseAddress.map { mkstemp($0) } ?? -1 }
            }
        }
        let fd: Int32
        switch made {
        case .success(let descriptor): fd = descriptor
        case .failure(let error): throw HostConfigurationError("cannot create the status scoreboard in \(directory): \(error)")
        }
        template.withUnsafeBufferPointer { buffer in _ = buffer.baseAddress.map { unlink($0) } }
        do {
            // Workers get their own copy on a fixed descriptor (dup2 clears this flag there).
            try SystemCall.addFlag(FD_CLOEXEC, to: fd, descriptorFlags: true, name: "FD_CLOEXEC")
            _ = try SystemCall.retrying("ftruncate") { ftruncate(fd, off_t(count * 8)) }
        } catch {
            SystemCall.close(fd)
            throw HostConfigurationError("cannot size the status scoreboard: \(error)")
        }
        try self.init(descriptor: fd, count: count)
    }

    /// Maps `count` words of the shared file open on `descriptor` (inherited from the supervisor).
    init(descriptor: Int32, count: Int) throws(HostConfigurationError) {
        guard let base = mmap(nil, count * 8, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0),
              base != MAP_FAILED
        else {
            throw HostConfigurationError("cannot map the status scoreboard: \(SystemCallError("mmap", errno: errno))")
        }
        // A file's new pages read as zero, which is each word's initial state.
        words = base.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        self.count = count
        self.descriptor = descriptor
    }

    deinit {
        munmap(UnsafeMutableRawPointer(words), count * 8)
        SystemCall.close(descriptor)
    }

    /// The size of the shared file behind `descriptor`, in words (0 if unknown).
    static func count(of descriptor: Int32) -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return 0 }
        return Int(info.st_size) / 8
    }

    subscript(index: Int) -> UInt64 {
        get {
            guard index >= 0, index < count else { return 0 }
            return words[index].load(ordering: .relaxed)
        }
        set {
            guard index >= 0, index < count else { return }
            words[index].store(newValue, ordering: .relaxed)
        }
    }

    /// Adds `amount`; for words more than one thread writes (the rest are
    /// written by one thread only and use plain load and store).
    func add(_ index: Int, _ amount: UInt64) {
        guard index >= 0, index < count else { return }
        words[index].add(amount, ordering: .relaxed)
    }

    /// Replaces `expected` with `desired` if the word still holds it
    /// (acquiring and releasing); whether it did. Where several writers may
    /// race: claiming a free record, adding to a floating-point sum.
    func compareExchange(_ index: Int, expected: UInt64, desired: UInt64) -> Bool {
        guard index >= 0, index < count else { return false }
        return words[index].compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing).exchanged
    }

    /// Stores with release ordering (the end of a seqlock write).
    func publish(_ index: Int, _ value: UInt64) {
        guard index >= 0, index < count else { return }
        words[index].store(value, ordering: .releasing)
    }

    /// Loads with acquire ordering (the start of a seqlock read).
    func acquire(_ index: Int) -> UInt64 {
        guard index >= 0, index < count else { return 0 }
        return words[index].load(ordering: .acquiring)
    }
}
