import Foundation

/// Where a spawned child's standard output and error go; its standard
/// input is `/dev/null`.
struct ChildStreams {
    /// Standard output; standard error goes with it unless `errors` says otherwise.
    var output: Sink
    var errors: Sink?

    enum Sink {
        /// The file, created or truncated.
        case file(String)
        /// The descriptor's copy becomes the child's fd.
        case descriptor(Int32)
    }
}

/// Starts `executable` and returns its PID, without waiting.
///
/// The child starts with **an empty signal mask and every signal's default
/// action**, whatever the calling thread had: the test runner may have
/// blocked `SIGTERM` and `SIGHUP` (GimletSystem's `ProcessSignals` does, for
/// an in-process host), and Foundation's `Process` hands its own mask on, so
/// a server started with it would ignore `SIGTERM` until killed.
func spawnChild(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                directory: String? = nil, streams: ChildStreams) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    // The directory first: relative paths below are the child's.
    if let directory { _ = GNUSpawnActions.addChdir(&actions, directory) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    switch streams.output {
    case .file(let path): posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    case .descriptor(let descriptor): posix_spawn_file_actions_adddup2(&actions, descriptor, 1)
    }
    switch streams.errors {
    case nil: posix_spawn_file_actions_adddup2(&actions, 1, 2)
    case .file(let path)?: posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    case .descriptor(let descriptor)?: posix_spawn_file_actions_adddup2(&actions, descriptor, 2)
    }
    // Nothing else of the test runner's: another test's pipe or socket held
    // open by this child would keep that test waiting for an end.
    _ = GNUSpawnActions.addClosefrom(&actions, 3)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned: Int32
    if let environment {
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    } else {
        spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    }
    guard spawned == 0 else { throw SetupError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
    return pid
}

/// Waits for `pid` to end; its exit status, or the number of the signal
/// that ended it (as Foundation's `terminationStatus` says).
func waitForChild(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR { return -1 }  // reaped by someone else (an in-process supervisor)
    }
    return exitStatus(status)
}

/// A `waitpid` status as an exit status, or the signal's number.
func exitStatus(_ status: Int32) -> Int32 {
    let signal = status & 0x7F
    return signal == 0 ? (status >> 8) & 0xFF : signal
}

/// Runs a program to its end with its output in pipes; its exit status and
/// what it wrote to each.
func runToCompletion(_ executable: String, _ arguments: [String]) throws
    -> (status: Int32, output: [UInt8], errors: [UInt8]) {
    let stdout = Pipe(), stderr = Pipe()
    let pid = try spawnChild(executable, arguments, streams: ChildStreams(
        output: .descriptor(stdout.fileHandleForWriting.fileDescriptor),
        errors: .descriptor(stderr.fileHandleForWriting.fileDescriptor)))
    // Our copies of the child's ends: the reads below end when the child's do.
    try stdout.fileHandleForWriting.close()
    try stderr.fileHandleForWriting.close()
    // Standard error is read on another thread: a full pipe would block the program.
    let errors = Handoff<Data>()
    Thread { errors.put(stderr.fileHandleForReading.readDataToEndOfFile()) }.start()
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    let status = waitForChild(pid)
    return (status, Array(data), Array(errors.take(seconds: 10) ?? Data()))
}

/// glibc's two spawn actions that Swift's Glibc module does not declare
/// (they need `_GNU_SOURCE`), looked up once; Debian 12's glibc (2.36) has both.
private enum GNUSpawnActions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static let addChdir: AddChdir = symbol("posix_spawn_file_actions_addchdir_np")
    static let addClosefrom: AddClosefrom = symbol("posix_spawn_file_actions_addclosefrom_np")

    private static func symbol<Function>(_ name: String) -> Function {
        // RTLD_DEFAULT is a null handle in glibc.
        guard let address = dlsym(nil, name) else { fatalError("glibc lacks \(name): Debian 12 or later is needed") }
        return unsafeBitCast(address, to: Function.self)
    }
}
