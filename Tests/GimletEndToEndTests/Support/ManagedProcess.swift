import Foundation
import Synchronization

/// A child process the test started: output to a file, stopped by PID when
/// the test ends, even when it fails. It starts with an empty signal mask
/// (``spawnChild(_:_:environment:directory:streams:)``), so `SIGTERM` stops it.
final class ManagedProcess: Sendable {
    let name: String
    let pid: Int32
    let outputPath: String
    /// The exit status once reaped (``exitStatus(_:)``); -1 if someone else reaped it.
    private let ended = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputPath`.
    init(_ name: String, executable: String, arguments: [String], outputPath: String,
         environment: [String: String]? = nil, directory: String? = nil) throws {
        self.name = name
        self.outputPath = outputPath
        pid = try spawnChild(executable, arguments, environment: environment, directory: directory,
                             streams: ChildStreams(output: .file(outputPath)))
    }

    deinit { stop() }

    /// Whether the process still runs (a zombie has ended: it is reaped here).
    var isRunning: Bool {
        ended.withLock { ended in
            guard ended == nil else { return false }
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                ended = exitStatus(status)
            } else if reaped < 0 && errno == ECHILD {
                ended = -1
            }
            return ended == nil
        }
    }

    /// What it printed so far.
    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for exit; returns the exit status (the signal's number if a
    /// signal ended it), or `nil` if it is still running after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        guard waitUntil(seconds: seconds, { !isRunning }) else { return nil }
        return ended.withLock { $0 }
    }

    /// SIGTERM, then SIGKILL if it has not gone within five seconds.
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
/// exit status once the program itself has ended.
func runDaemonizer(_ executable: String, _ arguments: [String], outputPath: String) throws -> Int32 {
    waitForChild(try spawnChild(executable, arguments, streams: ChildStreams(output: .file(outputPath))))
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
