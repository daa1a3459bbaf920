import Logging
import Synchronization

/// Runs async handlers and middleware on the worker thread that received
/// their request.
///
/// The request's task prefers this executor (SE-0417), so every part of it
/// runs here: its start, the code after each `await`, and its child tasks
/// (`async let`, task groups), which inherit the preference. Meanwhile the
/// worker thread does nothing but run those jobs until the task ends. So a
/// blocking call in an async handler (hiredis, sqlite3, the session's
/// backend I/O) blocks this worker thread exactly as it would in a
/// synchronous handler, and never a thread of Swift's shared pool; and the
/// request, which is not `Sendable`, is only ever used by this one thread.
///
/// Synchronous middleware inside async middleware calls the rest of the
/// chain synchronously; if that part is async again, it runs as another task
/// on the same executor (``current``), the worker thread running the queue
/// from within: the outer task's child tasks keep running meanwhile.
///
/// While no job is ready, the worker thread waits on the request's
/// connection too (see ``ConnectionWatch``) and until the request's
/// deadline: when the web server closes the connection, or the deadline
/// passes, every task of the request is cancelled and
/// `request.cancellation` says why. A request that never waits (most of
/// them) makes no system call here.
///
/// Once the request's outermost task has ended the executor is closed:
/// a job that still arrives (an unstructured task the handler started with
/// this executor's preference, a ``WorkerThread/run(_:)`` that came too
/// late) runs on Swift's global executor instead of waiting forever.
///
/// Each worker thread keeps its executor for its next request (making one
/// and ending it cost about 1.2k instructions, a tenth of what the bridge
/// adds to a request), unless something of the request still holds it
/// then (such a task, a ``WorkerThread`` kept in a ``SharedSession``):
/// then that one stays closed for good and the thread makes a new one. So
/// a request never shares its executor with anything of an earlier request.
///
/// Code that runs on an actor (`@MainActor`, a custom actor) runs there and
/// comes back here afterwards, as Swift's rules say.
final class WorkerThreadExecutor: TaskExecutor, Sendable {
    private struct State: ~Copyable {
        var jobs: [UnownedJob] = []
        /// The request's outermost task and any nested ones, to cancel them
        /// all when the request is aborted (the first kept inline: most
        /// requests have only that one).
        var task: Task<Void, Never>?
        var nestedTasks: [Task<Void, Never>] = []
        /// Whether the worker thread is blocked in ``WakeUp/wait(watching:until:)``.
        var sleeping = false
        var closed = true
        /// What the worker thread waits on, made the first time it has to wait.
        var wakeUp = WakeUp()
    }

    private let state = Mutex(State())
    /// The worker thread this executor's jobs run on.
    let thread = ThreadIdentity.current

    deinit { state.withLock { $0.wakeUp.close() } }

    /// The executor whose jobs the calling thread runs now, if any: set on
    /// the worker thread while it runs a request's async code (a thread
    /// variable, not a task-local one: pushing a task-local value cost every
    /// async request a few thousand instructions).
    static var current: WorkerThreadExecutor? { ThreadExecutor.running }

    /// Made by ``ThreadExecutor``, closed until a request opens it.
    init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.jobs.append(job)
            if state.sleeping { state.wakeUp.signal() }
            return true
        }
        // The request is over: nobody runs this queue any more.
        if !accepted { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    /// Whether the request this executor serves is still running and the
    /// calling thread is its worker thread: then what the request owns may
    /// be used right here.
    var isCurrentAndOpen: Bool {
        thread.isCurrent && state.withLock { !$0.closed }
    }

    /// Runs `operation` with `request` on the calling thread and returns what
    /// it returned (or throws what it threw): on the current request task's
    /// executor if there is one, else on a new one.
    static func run<Success: Sendable>(
        _ request: Request, _ operation: @escaping @Sendable (Request) async throws -> Success
    ) throws -> Success {
        if let current { return try current.wait(for: request, operation, outermost: false) }
        let slot = ThreadExecutor.slot
        // Still held by something of an earlier request: left closed to it.
        if !isKnownUniquelyReferenced(&slot.executor) { slot.executor = WorkerThreadExecutor() }
        let executor = slot.executor
        executor.state.withLock { $0.closed = false }
        slot.running = true
        defer {
            slot.running = false
            // The tasks are over; their handles would keep the executor.
            executor.state.withLock { state in
                state.task = nil
                state.nestedTasks.removeAll(keepingCapacity: true)
            }
        }
        return try executor.wait(for: request, operation, outermost: true)
    }

    /// Starts `operation` as a task on this executor and runs jobs until it has finished.
    private func wait<Success: Sendable>(
        for request: Request, _ operation: @escaping @Sendable (Request) async throws -> Success, outermost: Bool
    ) throws -> Success {
        let call = Call(self, request, operation)
        // The closure holds the call alone: no context of its own to allocate.
        let task = Task(executorPreference: self) { await call.perform() }
        if request.cancellation != nil { task.cancel() }
        state.withLock { state in
            if state.task == nil { state.task = task } else { state.nestedTasks.append(task) }
        }
        return try runJobs(until: call, drain: outermost, request: request).get()
    }

    /// Hands the task's result to the waiting worker thread.
    fileprivate func finish<Success>(_ call: Call<Success>, with result: Result<Success, any Error>) {
        state.withLock { state in
            call.result = result
            if state.sleeping { state.wakeUp.signal() }
        }
    }

    private enum Step<Success> {
        case run(UnownedJob)
        case done(Result<Success, any Error>)
        case sleep(WakeUp)
    }

    /// Runs jobs as they come until `call` has its result (and, with `drain`, no
    /// job is left; then the executor closes). With no job ready it waits,
    /// watching the request's connection and deadline.
    private func runJobs<Success>(
        until call: Call<Success>, drain: Bool, request: Request
    ) -> Result<Success, any Error> {
        let unowned = asUnownedTaskExecutor()
        var watch = request.connectionWatch
        while true {
            let step = state.withLock { state -> Step<Success> in
                if let result = call.result, !drain || state.jobs.isEmpty {
                    if drain { state.closed = true }
                    return .done(result)
                }
                if !state.jobs.isEmpty { return .run(state.jobs.removeFirst()) }
                state.sleeping = true
                state.wakeUp.prepare()
                return .sleep(state.wakeUp)
            }
            switch step {
            case .run(let job):
                job.runSynchronously(on: unowned)
            case .done(let result):
                return result
            case .sleep(let wakeUp):
                let deadline = request.cancellation == nil ? request.deadline : nil
                let woken = wakeUp.wait(watching: request.cancellation == nil ? watch : nil, until: deadline)
                state.withLock { $0.sleeping = false }
                switch woken {
                case .signalled:
                    break
                case .otherInput:
                    watch = nil   // not ours to read; stop watching rather than spin
                case .closed:
                    cancel(request, because: .connectionClosed)
                case .deadlinePassed:
                    cancel(request, because: .deadlinePassed)
                }
            }
        }
    }

    /// Cancels every task of the request, once, and says so in the log.
    private func cancel(_ request: Request, because reason: RequestCancellation) {
        guard request.cancellation == nil else { return }
        request.cancellation = reason
        request.logger.notice("request cancelled; its session changes are not stored", metadata: [
            "reason": "\(reason)", "method": "\(request.method)", "path": "\(request.path)",
        ])
        let tasks = state.withLock { state in (state.task.map { [$0] } ?? []) + state.nestedTasks }
        for task in tasks { task.cancel() }
    }
}

/// One call of ``WorkerThreadExecutor/run(_:_:)``: what its task runs, and
/// where the task leaves the result for the waiting worker thread.
///
/// `@unchecked Sendable`: `request`, which is not `Sendable`, is used only
/// by the task, which runs only on the thread that made the call while that
/// thread runs nothing but that executor's jobs, so it is never used by two
/// threads; `result` is written and read only with the executor's state
/// lock held.
private final class Call<Success: Sendable>: @unchecked Sendable {
    private let executor: WorkerThreadExecutor
    private let request: Request
    private let operation: @Sendable (Request) async throws -> Success
    // protected by: the executor's state lock
    var result: Result<Success, any Error>?

    init(_ executor: WorkerThreadExecutor, _ request: Request, _ operation: @escaping @Sendable (Request) async throws -> Success) {
        self.executor = executor
        self.request = request
        self.operation = operation
    }

    /// The task's body: the operation, then its result handed over.
    func perform() async {
        let result: Result<Success, any Error>
        do {
            result = .success(try await operation(request))
        } catch {
            result = .failure(error)
        }
        executor.finish(self, with: result)
    }
}
