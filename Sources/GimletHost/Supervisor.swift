import Dispatch
import Foundation
import GimletTransport
import Logging
import Synchronization

/// Pre-started worker processes sharing one listening socket, the php-fpm way.
///
/// The supervisor opens the socket and starts its own executable N times with
/// the socket on fd 0 and `GIMLET_WORKER=1` in the environment; each worker
/// serves it with its own threads. A worker that dies is logged and replaced
/// (after a back-off when it keeps dying young). SIGHUP replaces the workers
/// one after another, each new one started before an old one is asked to
/// stop, while the socket stays open, so no connection is refused. SIGTERM or
/// SIGINT stops every worker gracefully (in-flight requests finish, at most
/// ``stopTimeout`` seconds), then the supervisor exits.
final class Supervisor: Sendable {
    enum Command { case stop, reload }

    static let workerVariable = "GIMLET_WORKER"
    /// How long workers get to finish in-flight requests on stop before they are killed.
    static let stopTimeout: Double = 30

    let count: Int
    let logger: Logger
    // protected by: the mutex; signal handlers only post commands.
    private let commands = Mutex<[Command]>([])

    init(count: Int, logger: Logger) {
        self.count = count
        self.logger = logger
    }

    /// Whether this process is a worker started by a supervisor.
    static func isWorker(_ environment: [String: String]) -> Bool { environment[workerVariable] == "1" }

    /// Runs until SIGTERM or SIGINT; `listener` is the open listening socket.
    func run(listener: Int32) throws {
        guard let executable = ProcessCalls.ownExecutable() else {
            throw HostConfigurationError("cannot find this program's own path (/proc/self/exe) to start workers")
        }
        var environment = ProcessInfo.processInfo.environment
        environment[Self.workerVariable] = "1"
        let arguments = Array(CommandLine.arguments.dropFirst())
        func start() throws -> WorkerProcess {
            let pid = try ProcessCalls.spawn(executable, arguments: arguments, environment: environment, listener: listener)
            logger.info("worker started", metadata: ["pid": "\(pid)"])
            return WorkerProcess(pid: pid, started: ProcessCalls.now())
        }

        let sources = [(SIGTERM, Command.stop), (SIGINT, .stop), (SIGHUP, .reload)].map { number, command in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in self.commands.withLock { $0.append(command) } }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        var workers = try (0..<count).map { _ in try start() }
        var backoff = 0.5
        logger.info("supervising \(count) workers")
        while true {
            // Replace the dead.
            while let (pid, description) = ProcessCalls.reapOne() {
                guard let index = workers.firstIndex(where: { $0.pid == pid }) else { continue }
                let lived = ProcessCalls.now() - workers[index].started
                logger.error("worker \(description); replacing it", metadata: ["pid": "\(pid)", "lived_s": "\(Int(lived))"])
                if lived < 2 {
                    ProcessCalls.sleep(seconds: backoff)
                    backoff = min(backoff * 2, 30)
                } else {
                    backoff = 0.5
                }
                workers[index] = try start()
            }
            let pending = commands.withLock { queue -> [Command] in
                defer { queue.removeAll() }
                return queue
            }
            if pending.contains(where: { if case .stop = $0 { true } else { false } }) {
                stopAll(workers)
                return
            }
            if pending.contains(where: { if case .reload = $0 { true } else { false } }) {
                logger.info("SIGHUP: replacing workers one by one")
                for index in workers.indices {
                    let old = workers[index]
                    workers[index] = try start()
                    // Let the new worker reach its accept loop before the old one leaves.
                    ProcessCalls.sleep(seconds: 0.3)
                    ProcessCalls.signal(old.pid, SIGTERM)
                }
            }
            ProcessCalls.sleep(seconds: 0.05)
        }
    }

    private func stopAll(_ workers: [WorkerProcess]) {
        logger.info("stopping \(workers.count) workers after their in-flight requests")
        for worker in workers { ProcessCalls.signal(worker.pid, SIGTERM) }
        var remaining = Set(workers.map(\.pid))
        let deadline = ProcessCalls.now() + Self.stopTimeout
        while !remaining.isEmpty {
            while let (pid, _) = ProcessCalls.reapOne() { remaining.remove(pid) }
            guard !remaining.isEmpty else { break }
            if ProcessCalls.now() > deadline {
                logger.error("workers still running after \(Int(Self.stopTimeout)) s; killing them")
                for pid in remaining { ProcessCalls.signal(pid, SIGKILL) }
                ProcessCalls.sleep(seconds: 0.5)
                while ProcessCalls.reapOne() != nil {}
                break
            }
            ProcessCalls.sleep(seconds: 0.05)
        }
        logger.info("stopped: every worker has finished")
    }
}
