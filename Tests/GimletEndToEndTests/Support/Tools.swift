import Foundation
import Logging
import Synchronization
import Testing

/// Where the repository and its built binaries are.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// A binary built by `swift build` (`.build/debug/NAME`, or `$GIMLET_BIN_DIR/NAME`).
    static func binary(_ name: String) throws -> String {
        let directory = ProcessInfo.processInfo.environment["GIMLET_BIN_DIR"]
            ?? root.appendingPathComponent(".build/debug").path
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw SetupError("\(path) is missing: run `swift build` (make test does) before the end-to-end tests")
        }
        return path
    }
}

/// A test prerequisite that is missing; the message names the package to install.
struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// External programs the end-to-end tests drive. A missing one fails the test
/// with the Debian package to install: tests are never skipped silently.
enum Tool {
    static func path(_ name: String, package: String) throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        throw SetupError("\(name) is not installed: apt-get install \(package) (make test installs it)")
    }

    static func nginx() throws -> String { try path("nginx", package: "nginx") }
    static func spawnFCGI() throws -> String { try path("spawn-fcgi", package: "spawn-fcgi") }
    static func curl() throws -> String { try path("curl", package: "curl") }
    static func wrk() throws -> String { try path("wrk", package: "wrk") }
}

/// Copies an executable with `cp`, so that this process never holds it open
/// for writing: a child another test spawns meanwhile would inherit that
/// descriptor, and executing the copy would then fail with "Text file busy".
func copyExecutable(_ source: String, to destination: String) throws {
    let copied = try runToCompletion("/bin/cp", [source, destination])
    guard copied.status == 0 else {
        throw SetupError("cp \(source) \(destination) failed: \(String(decoding: copied.errors, as: UTF8.self))")
    }
}

/// A temporary directory removed when the value goes away.
final class TemporaryDirectory: @unchecked Sendable {
    // @unchecked: `path` is immutable; the class exists only for deinit.
    let path: String

    init(_ prefix: String = "gimlet-test") throws {
        let template = NSTemporaryDirectory() + prefix + "-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw SetupError("mkdtemp failed for \(template)") }
        path = String(cString: made)
        // nginx workers run as `nobody` when the tests run as root: let them in.
        chmod(path, 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Ports this test process has handed out: the next one is the count past a
/// random start (protected by: atomic increments).
private let portsHandedOut = Atomic<Int>(Int.random(in: 0..<PortRange.size))

/// Where test servers listen: below the kernel's ephemeral range (32768 and
/// up on Debian), which every outgoing connection (curl, nginx to an
/// upstream, the app to Redis) takes its source port from.
private enum PortRange {
    static let low = 20_000
    static let size = 12_000
}

/// A TCP port on 127.0.0.1 for a test server, free right now and handed to
/// no other test of this process.
///
/// Not the kernel's `bind(0)`: that port comes from the ephemeral range, so
/// between its `close` and the server's `bind` an outgoing connection could
/// take it as its source port (the server then fails with `EADDRINUSE`).
/// These come from a range no connection's source port is taken from, one
/// after another from a process-wide counter, each checked by binding.
func freeLoopbackPort() throws -> Int {
    for _ in 0..<PortRange.size {
        let port = PortRange.low + portsHandedOut.add(1, ordering: .relaxed).newValue % PortRange.size
        if canBindLoopback(port) { return port }
    }
    throw SetupError("no free port on 127.0.0.1 in \(PortRange.low)..<\(PortRange.low + PortRange.size)")
}

/// Whether a listening socket could bind 127.0.0.1:`port` now.
private func canBindLoopback(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var reuse: Int32 = 1  // as the servers set it: a port in TIME_WAIT is free for them
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// Waits until `condition` holds, polling every 20 ms, for at most `seconds`.
func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// The fenced code block in `language` that follows `marker` in the
/// repository's Markdown file `path`: how the tests run the documentation's
/// commands and code exactly as written.
func markdownBlock(after marker: String, language: String, in path: String) throws -> String {
    let text = try String(contentsOf: Repository.root.appendingPathComponent(path), encoding: .utf8)
    guard let found = text.range(of: marker),
          let open = text.range(of: "```\(language)\n", range: found.upperBound..<text.endIndex),
          let close = text.range(of: "```", range: open.upperBound..<text.endIndex)
    else { throw SetupError("\(path) has no \(language) block after \(marker)") }
    return String(text[open.upperBound..<close.lowerBound])
}

/// Writes `text` to `path` readable and writable by its owner alone, as the
/// app wants its secret and key files, replacing what was there atomically.
func writePrivately(_ text: String, to path: String) throws {
    let temporary = path + ".new"
    try? FileManager.default.removeItem(atPath: temporary)
    guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8),
                                         attributes: [.posixPermissions: 0o600]) else {
        throw SetupError("cannot write \(temporary)")
    }
    guard rename(temporary, path) == 0 else { throw SetupError("cannot rename \(temporary) to \(path)") }
}

/// What backends opened directly by a test log to (swift-log's default handler).
let testLogger = Logger(label: "gimlet-test")
