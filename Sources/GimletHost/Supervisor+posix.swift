// Process control for the supervisor: posix_spawn, waitpid, kill.
import Glibc

/// A worker process started by the supervisor.
struct WorkerProcess: Equatable {
    let pid: pid_t
    let started: Double
}

enum ProcessCalls {
    /// The running executable's path.
    static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `executable` with `arguments` and `environment`, the listening
    /// socket `listener` as its fd 0, stdout and stderr shared.
    static func spawn(_ executable: String, arguments: [String], environment: [String: String],
                      listener: Int32) throws(HostConfigurationError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if listener != 0 { posix_spawn_file_actions_adddup2(&actions, listener, 0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Workers start with no signal blocked, whatever the supervisor's threads block.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw HostConfigurationError("cannot start a worker process (\(executable)): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// A child that has exited, if any (never blocks).
    static func reapOne() -> (pid: pid_t, description: String)? {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        guard pid > 0 else { return nil }
        let signal = status & 0x7F
        let description = signal == 0 ? "exited with status \((status >> 8) & 0xFF)" : "killed by signal \(signal)"
        return (pid, description)
    }

    static func signal(_ pid: pid_t, _ number: Int32) { kill(pid, number) }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func sleep(seconds: Double) { usleep(UInt32(max(0, seconds) * 1_000_000)) }
}
