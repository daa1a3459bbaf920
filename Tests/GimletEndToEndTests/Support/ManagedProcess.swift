import Foundation

/// A child process the test started: output to files, stopped by PID when the
/// test ends, even when it fails.
final class ManagedProcess: @unchecked Sendable {
    // @unchecked: Foundation's Process is thread-safe for the calls made here
    // (isRunning, terminationStatus, processIdentifier); the rest is immutable.
    let name: String
    let process = Process()
    let outputPath: String

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputPath`.
    init(_ name: String, executable: String, arguments: [String], outputPath: String,
         environment: [String: String]? = nil, directory: String? = nil) throws {
        self.name = name
        self.outputPath = outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        try process.run()
    }

    deinit { stop() }

    var pid: Int32 { process.processIdentifier }

    /// Whether the process still runs: asked of the kernel, as Foundation's
    /// own flag can lag behind an exit.
    var isRunning: Bool { process.isRunning && processIsAlive(process.processIdentifier) }

    /// What it printed so far.
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) {
        if isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for exit; returns the exit status, or `nil` if it is still running after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        guard waitUntil(seconds: seconds, { !isRunning }) else { return nil }
        // Foundation reaps the child and records its status; give it a moment.
        _ = waitUntil(seconds: 5) { !process.isRunning }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it has not gone within five seconds. Only
    /// the kernel is asked: stopping needs no exit status.
    func stop() {
        guard isRunning else { return }
        send(SIGTERM)
        if !waitUntil(seconds: 5, { !isRunning }) {
            send(SIGKILL)
            _ = waitUntil(seconds: 5) { !isRunning }
        }
    }
}

/// Runs a program that forks a daemon and exits (spawn-fcgi), returning its
/// exit status. Foundation's Process would wait for the daemon too: the
/// daemon inherits the descriptor Process watches for the exit.
func runDaemonizer(_ executable: String, _ arguments: [String], outputPath: String) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    guard spawned == 0 else { throw SetupError("cannot start \(executable): errno \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xFF
}

/// A process known only by a PID file (spawn-fcgi's child), stopped by that PID.
final class PIDFileProcess: @unchecked Sendable {
    // @unchecked: `pid` is immutable.
    let pid: Int32

    init(pidFile: String) throws {
        guard waitUntil(seconds: 10, { FileManager.default.fileExists(atPath: pidFile) }),
              let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw SetupError("no PID in \(pidFile)") }
        self.pid = pid
    }

    deinit { stop() }

    var isRunning: Bool { processIsAlive(pid) }

    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if !waitUntil(seconds: 5, { !isRunning }) { kill(pid, SIGKILL) }
    }
}

/// Whether `pid` exists and has not exited (a zombie has exited).
func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
}

/// The PIDs of the live children of `parent`, from /proc.
func childPIDs(of parent: Int32) -> Set<Int32> {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    var children = Set<Int32>()
    for entry in entries {
        guard let pid = Int32(entry),
              let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let afterName = stat.split(separator: ")").last
        else { continue }
        let fields = afterName.split(separator: " ")
        if fields.count > 1, fields[0] != "Z", Int32(fields[1]) == parent { children.insert(pid) }
    }
    return children
}
