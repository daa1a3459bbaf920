import Dispatch
import Foundation
import GimletSystem
import GimletTransport
import Logging
import Synchronization

/// Pre-started worker processes sharing one listening socket, the php-fpm way.
///
/// The supervisor opens the socket and starts its own executable N times with
/// the socket on fd 0 and `GIMLET_WORKER=1` in the environment; each worker
/// serves it with its own threads. A worker that dies is logged and replaced
/// (after a back-off when it keeps dying young). SIGHUP replaces the workers
/// one after another: an old one is asked to stop only once its successor has
/// reported ready (fd 3, just before it accepts), while the socket stays
/// open, so no connection is refused; a successor that fails to start ends
/// the reload and the old workers keep serving. SIGTERM or
/// SIGINT stops every worker gracefully (in-flight requests finish, at most
/// ``stopTimeout`` seconds), then the supervisor exits. SIGUSR1 reopens the
/// `--log-file` here and is passed on to every worker, which reopens its
/// access log and log file.
final class Supervisor: Sendable {
    enum Command { case stop, reload, reopenLogs }

    static let workerVariable = "GIMLET_WORKER"
    /// How long workers get to finish in-flight requests on stop before they are killed.
    static let stopTimeout: Double = 30
    /// How long a new worker may take to report ready before it is given up.
    static let readyTimeout: Double = 30

    let count: Int
    let logger: Logger
    /// Shared with the workers when any operator's tool is on: their status
    /// and heartbeats, read here to replace stuck workers and recycle.
    let scoreboard: Scoreboard?
    let settings: OperationsSettings
    /// `--log-file`, reopened on SIGUSR1.
    let logFile: String?
    // protected by: the mutex; signal handlers only post commands.
    private let commands = Mutex<[Command]>([])

    init(count: Int, logger: Logger, scoreboard: Scoreboard? = nil, settings: OperationsSettings = OperationsSettings(),
         logFile: String? = nil) {
        self.logFile = logFile
        self.count = count
        self.logger = logger
        self.scoreboard = scoreboard
        self.settings = settings
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
        environment[ProcessCalls.readinessVariable] = String(ProcessCalls.readinessDescriptor)
        let arguments = Array(CommandLine.arguments.dropFirst())
        // Scoreboard slots given to live workers (a reload runs one more than `count` for a while).
        var taken = Set<Int>()
        func start() throws -> WorkerProcess {
            var environment = environment
            var slot = -1
            if let scoreboard {
                guard let free = (0..<scoreboard.processCapacity).first(where: { !taken.contains($0) }) else {
                    throw HostConfigurationError("no free scoreboard slot for a new worker")
                }
                slot = free
                scoreboard.claim(slot)
                environment["GIMLET_SCOREBOARD_FD"] = String(ProcessCalls.scoreboardDescriptor)
                environment[ProcessCalls.slotVariable] = String(slot)
            }
            let pid: pid_t, readiness: Int32
            do {
                (pid, readiness) = try ProcessCalls.spawn(executable, arguments: arguments, environment: environment,
                                                          listener: listener, scoreboard: scoreboard?.words.descriptor)
            } catch {
                if slot >= 0 { scoreboard?.release(slot) }
                throw error
            }
            if let scoreboard {
                taken.insert(slot)
                scoreboard.assign(slot, pid: pid)
            }
            logger.info("worker started", metadata: ["pid": "\(pid)"])
            var worker = WorkerProcess(pid: pid, started: ProcessCalls.now(), readiness: readiness)
            worker.slot = slot
            return worker
        }
        /// The slot of a worker that has ended is free again; its counters stay.
        func released(_ pid: pid_t, slot: Int) {
            guard slot >= 0, let scoreboard, scoreboard.pid(slot) == pid else { return }
            scoreboard.release(slot)
            taken.remove(slot)
        }
        /// Waits for `worker` to report ready; `nil` when it did, else why not
        /// (a worker that stayed silent is killed).
        func startupProblem(_ worker: inout WorkerProcess) -> String? {
            guard let readiness = worker.readiness else { return nil }
            worker.readiness = nil
            switch ProcessCalls.awaitReady(pid: worker.pid, readiness: readiness, seconds: Self.readyTimeout) {
            case .ready:
                return nil
            case .exited(let how):
                released(worker.pid, slot: worker.slot)
                return "\(how) before it was ready (its own message is above)"
            case .silent(let seconds):
                ProcessSignals.send(SIGKILL, to: worker.pid)
                _ = ProcessCalls.waitForExit(worker.pid, seconds: 5)
                released(worker.pid, slot: worker.slot)
                return "was not ready after \(Int(seconds)) s and was killed"
            }
        }

        let sources = [(SIGTERM, Command.stop), (SIGINT, .stop), (SIGHUP, .reload), (SIGUSR1, .reopenLogs)].map { number, command in
            ProcessSignals.handle(number) { [self] in self.commands.withLock { $0.append(command) } }
        }
        defer { sources.forEach { $0.cancel() } }

        var workers = try (0..<count).map { _ in try start() }
        for index in workers.indices {
            if let problem = startupProblem(&workers[index]) {
                logger.error("worker \(workers[index].pid) \(problem); stopping")
                stopAll(workers.filter { $0.pid != workers[index].pid })
                throw HostConfigurationError("a worker could not start: it \(problem)")
            }
        }
        var backoff = 0.5
        // Slots whose worker died, and when to start the next one there.
        var vacant: [(index: Int, at: Double)] = []
        func schedule(_ index: Int, diedYoung: Bool) {
            // The dead worker's pid may soon be another process's: the slot holds none.
            workers[index] = WorkerProcess(pid: 0, started: ProcessCalls.now(), readiness: nil)
            if diedYoung {
                logger.warning("a worker died young; the next start waits \(backoff) s")
                vacant.append((index, ProcessCalls.now() + backoff))
                backoff = min(backoff * 2, 30)
            } else {
                backoff = 0.5
                vacant.append((index, ProcessCalls.now()))
            }
        }
        logger.info("supervising \(count) workers")
        // When a SIGTERM's drain ends and the workers are asked to stop.
        var stopAt: Double?
        // Workers killed for being stuck, not yet reaped: killed once, logged once.
        var killed = Set<pid_t>()
        while true {
            // Replace the dead, after a back-off when they keep dying young.
            while let (pid, description) = ProcessCalls.reapOne() {
                if let scoreboard, let slot = (0..<scoreboard.processCapacity).first(where: { scoreboard.pid($0) == pid }) {
                    released(pid, slot: slot)
                }
                killed.remove(pid)
                guard let index = workers.firstIndex(where: { $0.pid == pid }) else { continue }
                let lived = ProcessCalls.now() - workers[index].started
                logger.error("worker \(description); replacing it", metadata: ["pid": "\(pid)", "lived_s": "\(Int(lived))"])
                schedule(index, diedYoung: lived < 2)
            }
            let now = ProcessCalls.now()
            for slot in vacant where slot.at <= now {
                vacant.removeAll { $0.index == slot.index }
                // A reload may have filled the slot meanwhile.
                guard workers[slot.index].pid == 0 else { continue }
                workers[slot.index] = try start()
                if let problem = startupProblem(&workers[slot.index]) {
                    // Already reaped: schedule the next try here and now.
                    logger.error("replacement worker \(workers[slot.index].pid) \(problem)")
                    schedule(slot.index, diedYoung: true)
                }
            }
            let pending = commands.withLock { queue -> [Command] in
                defer { queue.removeAll() }
                return queue
            }
            if pending.contains(where: { if case .stop = $0 { true } else { false } }), stopAt == nil {
                scoreboard?.isDraining = true
                stopAt = now + settings.drain.seconds
                if settings.drain > .zero {
                    logger.info("stopping: the ping answers 503 for \(Watchdog.format(settings.drain.seconds)) s, then workers finish their requests")
                }
            }
            if let stopAt, now >= stopAt {
                stopAll(workers)
                return
            }
            if pending.contains(where: { if case .reopenLogs = $0 { true } else { false } }) {
                reopenLogs(workers)
            }
            if pending.contains(where: { if case .reload = $0 { true } else { false } }) {
                reload(&workers, start: start, problem: startupProblem)
            }
            if let scoreboard {
                watch(&workers, killed: &killed, scoreboard: scoreboard, start: start, problem: startupProblem)
            }
            ProcessCalls.sleep(seconds: 0.05)
        }
    }

    /// SIGUSR1: reopens this process's log file and has every worker reopen its own.
    private func reopenLogs(_ workers: [WorkerProcess]) {
        do {
            if let logFile { try LogFile.sendStandardError(to: logFile) }
            logger.info("SIGUSR1: log file reopened; passing it on to \(workers.count) workers")
        } catch {
            logger.error("SIGUSR1: \(error); logging goes on to the file already open")
        }
        for worker in workers { ProcessSignals.send(SIGUSR1, to: worker.pid) }
    }

    /// SIGHUP: replaces the workers one by one, each old one stopped only
    /// once its successor reported ready. A successor that fails abandons the
    /// reload: it is logged once, and the workers still running keep serving.
    private func reload(_ workers: inout [WorkerProcess], start: () throws -> WorkerProcess,
                        problem: (inout WorkerProcess) -> String?) {
        logger.info("SIGHUP: replacing workers one by one, each once its successor is ready")
        for index in workers.indices {
            var fresh: WorkerProcess
            do { fresh = try start() } catch {
                logger.error("reload abandoned: \(error); the running workers keep serving")
                return
            }
            if let problem = problem(&fresh) {
                logger.error("reload abandoned: the new worker \(fresh.pid) \(problem); \(workers.count) workers keep serving (\(index) of them already replaced by the new code)")
                return
            }
            let old = workers[index]
            workers[index] = fresh
            ProcessSignals.send(SIGTERM, to: old.pid)  // nothing for a vacant slot (pid 0)
        }
        logger.info("reload done: \(workers.count) new workers")
    }

    /// Kills a worker stuck past `--request-timeout` (a request older than
    /// the timeout plus a second, for its own stack line to come first) or
    /// silent that long (stopped, wedged); it is reaped and replaced like
    /// any dead worker. Replaces a worker that asked for it
    /// (`--max-requests`), its successor started and ready first.
    private func watch(_ workers: inout [WorkerProcess], killed: inout Set<pid_t>, scoreboard: Scoreboard,
                       start: () throws -> WorkerProcess, problem: (inout WorkerProcess) -> String?) {
        for index in workers.indices {
            let worker = workers[index]
            guard worker.pid > 0, worker.readiness == nil, worker.slot >= 0, scoreboard.pid(worker.slot) == worker.pid,
                  !killed.contains(worker.pid)
            else { continue }
            if let timeout = settings.requestTimeout?.seconds {
                let silence = scoreboard.silence(worker.slot)
                if silence > timeout {
                    let state = ProcessCalls.processState(worker.pid).map { $0 == "T" ? "stopped (T)" : "state \($0)" } ?? "state unknown"
                    logger.error("worker \(worker.pid) made no progress for \(Watchdog.format(silence)) s, past the \(Watchdog.format(timeout)) s timeout (\(state); a stopped process cannot report its stack); killing it", metadata: ["pid": "\(worker.pid)"])
                    ProcessSignals.send(SIGKILL, to: worker.pid)
                    killed.insert(worker.pid)
                    continue
                }
                let stuck = (0..<scoreboard.threadCapacity).compactMap { scoreboard.current(worker.slot, $0) }
                    .first { $0.seconds > timeout + 1 }
                if let stuck {
                    logger.error("worker \(worker.pid): \(stuck.method) \(stuck.path) running \(Watchdog.format(stuck.seconds)) s, past the \(Watchdog.format(timeout)) s timeout (its stack is in the worker's critical line above); killing it and starting another", metadata: ["pid": "\(worker.pid)", "request_id": "\(stuck.requestID)"])
                    ProcessSignals.send(SIGKILL, to: worker.pid)
                    killed.insert(worker.pid)
                    continue
                }
            }
            if scoreboard.wantsRecycling(worker.slot), scoreboard.state(worker.slot) != .stopping {
                scoreboard.setState(worker.slot, .stopping)
                var fresh: WorkerProcess
                do { fresh = try start() } catch {
                    logger.error("cannot start a successor for recycled worker \(worker.pid): \(error)")
                    continue
                }
                if let reason = problem(&fresh) {
                    logger.error("the successor of recycled worker \(worker.pid) \(reason); the old one keeps serving")
                    continue
                }
                workers[index] = fresh
                logger.info("worker \(worker.pid) recycled after --max-requests; \(fresh.pid) serves in its place")
                ProcessSignals.send(SIGTERM, to: worker.pid)
            }
        }
    }

    private func stopAll(_ workers: [WorkerProcess]) {
        logger.info("stopping \(workers.count) workers after their in-flight requests")
        for worker in workers { ProcessSignals.send(SIGTERM, to: worker.pid) }
        var remaining = Set(workers.map(\.pid).filter { $0 > 0 })
        let deadline = ProcessCalls.now() + Self.stopTimeout
        while !remaining.isEmpty {
            while let (pid, _) = ProcessCalls.reapOne() { remaining.remove(pid) }
            guard !remaining.isEmpty else { break }
            if ProcessCalls.now() > deadline {
                logger.error("workers still running after \(Int(Self.stopTimeout)) s; killing them")
                for pid in remaining { ProcessSignals.send(SIGKILL, to: pid) }
                ProcessCalls.sleep(seconds: 0.5)
                while ProcessCalls.reapOne() != nil {}
                break
            }
            ProcessCalls.sleep(seconds: 0.05)
        }
        logger.info("stopped: every worker has finished")
    }
}
