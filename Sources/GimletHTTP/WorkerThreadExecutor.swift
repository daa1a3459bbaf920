import Foundation

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
/// Code that runs on an actor (`@MainActor`, a custom actor) runs there and
/// comes back here afterwards, as Swift's rules say.
///
/// `@unchecked Sendable`: its one mutable field, `jobs`, is read and written
/// only with `condition` locked.
final class WorkerThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    // protected by: condition
    private var jobs: [UnownedJob] = []

    /// The executor of the request task running now, if any.
    @TaskLocal static var current: WorkerThreadExecutor?

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `operation` with `value` on the calling thread and returns what
    /// it returned (or throws what it threw): on the current request task's
    /// executor if there is one, else on a new one.
    static func run<Value, Success: Sendable>(
        _ value: Value, _ operation: @escaping @Sendable (Value) async throws -> Success
    ) throws -> Success {
        if let current { return try current.wait(for: value, operation, outermost: false) }
        return try WorkerThreadExecutor().wait(for: value, operation, outermost: true)
    }

    /// Starts `operation` as a task on this executor and runs jobs until it has finished.
    private func wait<Value, Success: Sendable>(
        for value: Value, _ operation: @escaping @Sendable (Value) async throws -> Success, outermost: Bool
    ) throws -> Success {
        let carried = ThreadBound(value)
        let outcome = Outcome<Success>()
        Task(executorPreference: self) {
            let result: Result<Success, any Error>
            do {
                result = .success(try await Self.$current.withValue(self) { try await operation(carried.value) })
            } catch {
                result = .failure(error)
            }
            self.finish(outcome, with: result)
        }
        return try runJobs(until: outcome, drain: outermost).get()
    }

    /// Hands the task's result to the waiting worker thread.
    private func finish<Success>(_ outcome: Outcome<Success>, with result: Result<Success, any Error>) {
        condition.lock()
        outcome.result = result
        condition.signal()
        condition.unlock()
    }

    /// Runs jobs as they come until `outcome` is set (and, with `drain`, no job is left).
    private func runJobs<Success>(until outcome: Outcome<Success>, drain: Bool) -> Result<Success, any Error> {
        let unowned = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && outcome.result == nil { condition.wait() }
            if let result = outcome.result, !drain || jobs.isEmpty {
                condition.unlock()
                return result
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: unowned)
        }
    }
}

/// Where a task on ``WorkerThreadExecutor`` leaves its result.
///
/// `@unchecked Sendable`: `result` is written and read only with the
/// executor's `condition` locked.
private final class Outcome<Success>: @unchecked Sendable {
    // protected by: the executor's condition
    var result: Result<Success, any Error>?
}

/// A value that is not `Sendable`, carried into a task that runs only on the
/// thread that made it (see ``WorkerThreadExecutor``).
///
/// `@unchecked Sendable`: the task runs only on the thread that created the
/// box, while that thread runs nothing but that executor's jobs, so the
/// value is never used by two threads.
private struct ThreadBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
