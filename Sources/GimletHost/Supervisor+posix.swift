// Process control for the supervisor: posix_spawn, waitpid, readiness pipes.
import Foundation
@_spi(GimletInlined) import GimletSystem
import Glibc

/// A worker process started by the supervisor.
struct WorkerProcess: Equatable {
    /// Its pid; 0 for a slot whose worker died and is waiting to be replaced.
    let pid: pid_t
    /// Its slot in the scoreboard (-1 without one).
    var slot: Int = -1
    let started: Double
    /// The read end of the worker's readiness pipe, until it has been read.
    var readiness: Int32?
}

/// What became of a new worker before it reported ready.
enum WorkerStart: Equatable {
    case ready
    case exited(String)
    case silent(seconds: Double)
}

enum ProcessCalls {
    /// The running executable's path.
    static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The fd on which a worker finds the write end of its readiness pipe.
    static let readinessDescriptor: Int32 = 3
    /// The variable that tells a worker to report readiness on that fd.
    static let readinessVariable = "GIMLET_READY_FD"
    /// The fd on which a worker finds the shared scoreboard, when there is one.
    static let scoreboardDescriptor: Int32 = 4
    /// The variable that gives a worker its scoreboard slot.
    static let slotVariable = "GIMLET_WORKER_SLOT"

    /// The state letter of `pid` in /proc (`T` stopped, `D` in uninterruptible sleep, …), if readable.
    static func processState(_ pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ").first.map(String.init)
    }

    /// Starts `executable` with `arguments` and `environment`, the listening
    /// socket `listener` as its fd 0, stdout and stderr shared (so its
    /// messages reach the supervisor's log), and the write end of a new
    /// readiness pipe as its fd 3. Returns the pid and the pipe's read end.
    static func spawn(_ executable: String, arguments: [String], environment: [String: String],
                      listener: Int32, scoreboard: Int32? = nil) throws(HostConfigurationError) -> (pid: pid_t, readiness: Int32) {
        var ends: [Int32] = [-1, -1]
        do {
            _ = try SystemCall.once("pipe") { pipe(&ends) }
        } catch {
            throw HostConfigurationError("cannot make a readiness pipe for a worker: \(error)")
        }
        var spawned = false
        defer {
            SystemCall.close(ends[1])
            if !spawned { SystemCall.close(ends[0]) }
        }
        do {
            // Only the supervisor's thread spawns, so no other child can inherit these between the calls.
            for end in ends { try SystemCall.addFlag(FD_CLOEXEC, to: end, descriptorFlags: true, name: "FD_CLOEXEC") }
        } catch {
            throw HostConfigurationError("cannot make a readiness pipe for a worker: \(error)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if listener != 0 { posix_spawn_file_actions_adddup2(&actions, listener, 0) }
        // dup2 clears close-on-exec on the copy: the worker keeps exactly fd 3.
        posix_spawn_file_actions_adddup2(&actions, ends[1], readinessDescriptor)
        if let scoreboard { posix_spawn_file_actions_adddup2(&actions, scoreboard, scoreboardDescriptor) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Workers start with the operator's signals blocked and nothing else,
        // whatever the supervisor's threads block: a SIGTERM sent while a
        // worker starts waits for its handler (ProcessSignals.takeOver).
        var blocked = ProcessSignals.handledSet
        posix_spawnattr_setsigmask(&attributes, &blocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        do {
            try SystemCall.check("posix_spawn", returned: posix_spawn(&pid, executable, &actions, &attributes, argv, envp))
        } catch {
            throw HostConfigurationError("cannot start a worker process (\(executable)): \(error)")
        }
        spawned = true
        return (pid, ends[0])
    }

    /// Waits until the worker `pid` writes to its readiness pipe `readiness`,
    /// exits, or `seconds` pass; closes the pipe. An exited worker is reaped.
    static func awaitReady(pid: pid_t, readiness: Int32, seconds: Double) -> WorkerStart {
        defer { SystemCall.close(readiness) }
        let deadline = now() + seconds
        while true {
            var entry = pollfd(fd: readiness, events: Int16(POLLIN), revents: 0)
            let wait = Int32(max(0, min(1_000, (deadline - now()) * 1_000)))
            // A pipe this process made cannot make poll or read fail but by EINTR, which is retried.
            let count = (try? SystemCall.retrying("poll") { poll(&entry, 1, wait) }) ?? 0
            if count > 0 {
                var byte: UInt8 = 0
                let got = try? SystemCall.retrying("read") { read(readiness, &byte, 1) }
                if got == 1 { return .ready }
                // End of file: the worker exited (or closed fd 3) without saying ready.
                return .exited(waitForExit(pid, seconds: 5) ?? "closed its readiness pipe without starting")
            }
            if now() >= deadline { return .silent(seconds: seconds) }
        }
    }

    /// Waits up to `seconds` for `pid` to exit and reaps it; how it ended, or
    /// `nil` if it is still running.
    static func waitForExit(_ pid: pid_t, seconds: Double) -> String? {
        let deadline = now() + seconds
        repeat {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return describe(status) }
            sleep(seconds: 0.02)
        } while now() < deadline
        return nil
    }

    /// Called by a worker just before it accepts its first connection: tells
    /// the supervisor that its router, configuration and socket are fine.
    /// Does nothing in a process the supervisor did not start.
    static func announceReady(environment: [String: String]) {
        guard environment[readinessVariable] == String(readinessDescriptor) else { return }
        // A supervisor that has gone away cannot be told: it will not wait either.
        _ = withUnsafeBytes(of: UInt8(ascii: "R")) { byte in try? SystemCall.writeAll(readinessDescriptor, byte, socket: false) }
        SystemCall.close(readinessDescriptor)
        // Nothing this process starts may take fd 3 for a readiness pipe.
        unsetenv(readinessVariable)
    }

    /// A child that has exited, if any (never blocks).
    static func reapOne() -> (pid: pid_t, description: String)? {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        guard pid > 0 else { return nil }
        return (pid, describe(status))
    }

    private static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        return signal == 0 ? "exited with status \((status >> 8) & 0xFF)" : "killed by signal \(signal)"
    }

    /// Seconds on the monotonic clock every process shares (``ProcessClock``).
    static func now() -> Double { Double(ProcessClock.nanoseconds()) / 1e9 }

    static func sleep(seconds: Double) { SystemCall.sleep(microseconds: Int(max(0, seconds) * 1_000_000)) }
}
