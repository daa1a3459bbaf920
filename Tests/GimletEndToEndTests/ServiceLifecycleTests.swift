import Foundation
import Synchronization
import Testing

/// swift-service-lifecycle services beside the app (issue 31, item 3):
/// session-lab returns `ServingApp(router, services: [LabService])`, run
/// behind real nginx.
@Suite(.serialized) struct ServicesBesideTheApp {
    typealias Stack = SessionLabBehindNginx.Stack

    /// Where `text` first occurs in `log`, or `nil`.
    func position(of text: String, in log: String) -> String.Index? { log.range(of: text)?.lowerBound }

    @Test func aServiceRunsBeforeTheFirstRequestAndStopsAfterTheLastBeforeTheBackends() throws {
        let stack = try Stack(["--status-path", "/-/status"])
        #expect(try stack.client.get("/service").text == "running")
        // A request in flight when the stop begins is answered before the service is asked to finish.
        let slow = DispatchSemaphore(value: 0)
        let answer = Mutex<HTTPResult?>(nil)
        let client = stack.client
        Thread {
            answer.withLock { $0 = try? client.get("/sleep/700") }
            slow.signal()
        }.start()
        let inFlight = waitUntil(seconds: 10) {
            guard let status = try? Operations.status(stack) else { return false }
            return Operations.number(status, "in_flight") >= 2  // the status request and the sleep
        }
        #expect(inFlight, "the slow request never started")
        stack.app.send(SIGTERM)
        #expect(slow.wait(timeout: .now() + 15) == .success)
        #expect(answer.withLock { $0?.status } == 200, "the request in flight was answered")
        #expect(stack.app.waitForExit(seconds: 20) == 0, "\(stack.app.output)")
        let log = stack.app.output
        let stopping = try #require(position(of: "stopping after in-flight requests", in: log), "\(log)")
        let stopped = try #require(position(of: "lab service: stopped", in: log), "\(log)")
        let backends = try #require(position(of: "lab: the responder and its backends shut down", in: log), "\(log)")
        #expect(position(of: "lab service: running", in: log).map { $0 < stopping } == true)
        #expect(stopping < stopped && stopped < backends, "in order: the stop, the service, the backends: \(log)")
        #expect(!log.contains("a service failed"))
    }

    @Test func aFailingServiceStopsItsWorkerWithOneLineAndTheSupervisorStartsAnother() throws {
        let stack = try Stack(["--workers", "1"], environment: ["GIMLET_LAB_SERVICE": "fail"])
        // The service throws 100 ms after each worker starts: the worker
        // exits 1, and the supervisor replaces it, waiting longer each time.
        let replaced = waitUntil(seconds: 20) {
            stack.app.output.components(separatedBy: "a service failed").count > 2
                && stack.app.output.contains("died young")
        }
        let log = stack.app.output
        #expect(replaced, "\(log)")
        let failures = log.split(separator: "\n").filter { $0.contains("a service failed") }
        #expect(failures.allSatisfy { $0.contains("the lab service failed on purpose") }, "\(failures)")
        #expect(log.contains("replacing it"), "the supervisor starts another worker: \(log)")
        #expect(stack.app.isRunning, "the supervisor goes on")
    }
}
