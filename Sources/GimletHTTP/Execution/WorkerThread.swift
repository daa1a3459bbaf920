/// The worker thread that runs the current request's async code, for values
/// that only that thread may use (the request, its session).
///
/// Child tasks of the request's task (`async let`, task groups) run on the
/// worker thread already; other code (an unstructured `Task`, an actor)
/// hops there for the length of a synchronous closure and back.
package struct WorkerThread: Sendable {
    private let executor: WorkerThreadExecutor

    /// The worker thread of the request whose async code calls this; `nil`
    /// outside a request's async code.
    package static var current: WorkerThread? { WorkerThreadExecutor.current.map(WorkerThread.init) }

    private init(_ executor: WorkerThreadExecutor) { self.executor = executor }

    /// Runs `body` on the worker thread while the request is still running,
    /// right here when the caller is already there; `nil`, with `body` not
    /// run, once the request is over.
    ///
    /// `body` is synchronous, so no other job of the request runs between
    /// the check and its end: what it touches is used by one thread at a time.
    package func run<Value>(_ body: () throws -> Value) async throws -> Value? {
        if executor.isCurrentAndOpen { return try body() }
        return try await withTaskExecutorPreference(executor) {
            // A job that arrives after the request ended runs on Swift's
            // global executor instead (see WorkerThreadExecutor): not here.
            guard executor.isCurrentAndOpen else { return nil }
            return try body()
        }
    }
}
