import Foundation

/// Runs an async handler on the worker thread that received its request.
///
/// The handler's task prefers this executor (SE-0417), so every part of it
/// runs here: its start, the code after each `await`, and its child tasks
/// (`async let`, task groups), which inherit the preference. Meanwhile the
/// worker thread does nothing but run those jobs until the task ends. So a
/// blocking call in an async handler (hiredis, sqlite3, the session's
/// backend I/O) blocks this worker thread exactly as it would in a
/// synchronous handler, and never a thread of Swift's shared pool; and the
/// request, which is not `Sendable`, is only ever used by this one thread.
///
/// Code that runs on an actor (`@MainActor`, a custom actor) runs there and
/// comes back here afterwards, as Swift's rules say.
///
/// `@unchecked Sendable`: its mutable state (`jobs`, `outcome`) is read and
/// written only with `condition` locked.
final class WorkerThreadExecutor<Success: Sendable>: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    // protected by: condition
    private var jobs: [UnownedJob] = []
    // protected by: condition
    private var outcome: Result<Success, any Error>?

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `operation` with `value` on the calling thread and returns what it
    /// returned (or throws what it threw), running the task's jobs until then.
    static func run<Value>(_ value: Value, _ operation: @escaping @Sendable (Value) async throws -> Success) throws -> Success {
        let executor = WorkerThreadExecutor()
        let carried = ThreadBound(value)
        Task(executorPreference: executor) {
            let result: Result<Success, any Error>
            do { result = .success(try await operation(carried.value)) } catch { result = .failure(error) }
            executor.finish(result)
        }
        return try executor.runJobs().get()
    }

    private func finish(_ result: Result<Success, any Error>) {
        condition.lock()
        outcome = result
        condition.signal()
        condition.unlock()
    }

    /// Runs jobs as they come until the task has finished and none is left.
    private func runJobs() -> Result<Success, any Error> {
        let unowned = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && outcome == nil { condition.wait() }
            if jobs.isEmpty, let outcome {
                condition.unlock()
                return outcome
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: unowned) }
        }
    }
}

/// A value that is not `Sendable`, carried into a task that runs only on the
/// thread that made it (see ``WorkerThreadExecutor``).
///
/// `@unchecked Sendable`: the task runs only on the thread that created the
/// box, while that thread runs nothing else, so the value is never used by
/// two threads.
private struct ThreadBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
