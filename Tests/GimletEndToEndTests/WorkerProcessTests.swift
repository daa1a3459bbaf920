import Foundation
import Testing

/// `--workers N` under a supervisor, and spawn-fcgi's own `-F`, behind nginx.
@Suite(.serialized) struct WorkerProcesses {
    final class Stack: @unchecked Sendable {
        // @unchecked: immutable after init.
        let directory: TemporaryDirectory
        let supervisor: ManagedProcess
        let nginx: Nginx
        let client: HTTPClient

        /// `hello --workers N`; with `copied`, the supervisor runs a copy of
        /// the binary at `app` in the test's directory, which the test may replace.
        init(workers: Int, copied: Bool = false, environment: [String: String]? = nil) throws {
            directory = try TemporaryDirectory("gimlet-workers")
            let socket = directory.file("hello.sock")
            var executable = try Repository.binary("hello")
            if copied {
                try copyExecutable(executable, to: directory.file("app"))
                executable = directory.file("app")
            }
            supervisor = try ManagedProcess(
                "hello", executable: executable,
                arguments: ["--fastcgi", "unix:" + socket, "--socket-mode", "666", "--workers", "\(workers)", "--threads", "2"],
                outputPath: directory.file("hello.log"), environment: environment)
            nginx = try Nginx(socket: socket)
            client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
            let client = self.client
            guard waitUntil(seconds: 15, { (try? client.get("/").status) == 200 }) else {
                throw SetupError("hello --workers did not answer: \(supervisor.output)")
            }
            let supervisor = self.supervisor
            // Every worker ready (the supervisor says so once the last one is): a
            // worker killed before it reported ready fails the start instead.
            _ = waitUntil(seconds: 15) { supervisor.output.contains("supervising \(workers) workers") }
            _ = waitUntil(seconds: 10) { childPIDs(of: supervisor.pid).count == workers }
        }

        deinit {
            nginx.process.stop()
            let workers = childPIDs(of: supervisor.pid)
            supervisor.stop()
            for pid in workers where processIsAlive(pid) { kill(pid, SIGKILL) }
        }

        var workers: Set<Int32> { childPIDs(of: supervisor.pid) }

        /// Starts `count` GETs in the background; `take` gives (status, body) per request.
        func load(count: Int) -> Handoff<[(status: Int, body: String)]> {
            let finished = Handoff<[(status: Int, body: String)]>()
            let client = self.client
            Thread { finished.put((try? client.parallelGets(count: count, connections: 8) { "/hello/n\($0)" }) ?? []) }.start()
            let marker = directory.file("par-50")
            _ = waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: marker) }
            return finished
        }

        /// Sends SIGHUP to the supervisor while `count` requests run; how many
        /// answered, and those that did not answer `200 hello, n<i>`.
        func reloadUnderLoad(count: Int) throws -> (answered: Int, failed: Int) {
            let load = load(count: count)
            supervisor.send(SIGHUP)
            let results = try #require(load.take(seconds: 120))
            let failed = results.enumerated().filter { $0.element.status != 200 || $0.element.body != "hello, n\($0.offset)" }
            return (results.count, failed.count)
        }
    }

    @Test func aKilledWorkerIsReplacedAndCostsOnlyItsInFlightRequests() throws {
        let stack = try Stack(workers: 3)
        let before = stack.workers
        #expect(before.count == 3)
        let load = stack.load(count: 1500)
        let victim = try #require(before.first)
        kill(victim, SIGKILL)
        let results = try #require(load.take(seconds: 120))
        let failed = results.enumerated().filter { $0.element.body != "hello, n\($0.offset)" }
        #expect(results.count == 1500)
        #expect(failed.count <= 2, "at most the killed worker's 2 in-flight requests: \(failed.count) failed")
        #expect(waitUntil(seconds: 10) { stack.workers.count == 3 }, "back to 3 workers")
        #expect(!stack.workers.contains(victim))
        #expect(stack.supervisor.output.contains("killed by signal 9; replacing it"))
    }

    @Test func sighupReplacesEveryWorkerWithoutAFailedRequest() throws {
        let stack = try Stack(workers: 3)
        let before = stack.workers
        let reload = try stack.reloadUnderLoad(count: 5000)
        #expect(reload.answered == 5000)
        #expect(reload.failed == 0, "\(reload.failed) requests failed during the reload")
        #expect(waitUntil(seconds: 10) { stack.workers.count == 3 && stack.workers.isDisjoint(with: before) },
                "three new workers")
    }

    /// A deploy that replaces the executable with one that cannot start,
    /// then SIGHUP: the old workers keep serving every request, the
    /// supervisor says once why the reload was given up, and nothing
    /// crash-loops. A good executable and SIGHUP then run the new code.
    @Test func aReloadOntoABadBinaryKeepsTheOldWorkersServing() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["GIMLET_SECRET"] = SessionLabBehindNginx.secret
        environment["GIMLET_BACKEND"] = "memory:"
        let stack = try Stack(workers: 2, copied: true, environment: environment)
        let before = stack.workers
        #expect(before.count == 2)
        // As a deploy does it: a new file moved over the old one.
        let broken = stack.directory.file("app.new")
        try "#!/bin/sh\necho 'error: invalid routes: GET /hello/:name is registered twice' >&2\nexit 1\n"
            .write(toFile: broken, atomically: true, encoding: .utf8)
        chmod(broken, 0o755)
        #expect(rename(broken, stack.directory.file("app")) == 0)

        let reload = try stack.reloadUnderLoad(count: 2000)
        #expect(reload.answered == 2000)
        #expect(reload.failed == 0, "\(reload.failed) requests failed after a bad reload")
        #expect(waitUntil(seconds: 10) { stack.supervisor.output.contains("reload abandoned") }, "\(stack.supervisor.output)")
        usleep(1_500_000)  // the point: time for a crash loop to show, were there one
        #expect(stack.workers == before, "the old workers still serve")
        let output = stack.supervisor.output
        #expect(output.components(separatedBy: "reload abandoned").count - 1 == 1, "said once: \(output)")
        #expect(output.contains("exited with status 1 before it was ready"))
        #expect(output.contains("GET /hello/:name is registered twice"), "the new worker's own message reaches the log")
        #expect(output.components(separatedBy: "worker started").count - 1 == 3, "no crash loop: \(output)")
        #expect(try stack.client.get("/hello/still").text == "hello, still")

        // A good executable (another app: session-lab) and SIGHUP run the new code.
        let good = stack.directory.file("app.good")
        try copyExecutable(try Repository.binary("session-lab"), to: good)
        #expect(rename(good, stack.directory.file("app")) == 0)
        stack.supervisor.send(SIGHUP)
        #expect(waitUntil(seconds: 30) { stack.supervisor.output.contains("reload done") }, "\(stack.supervisor.output)")
        #expect(waitUntil(seconds: 10) { stack.workers.count == 2 && stack.workers.isDisjoint(with: before) })
        #expect(try stack.client.get("/set/code/new").text == "ok", "session-lab's routes answer now")
        #expect(try stack.client.get("/").status == 404, "hello's are gone")
    }

    @Test func sigtermStopsEveryWorkerAfterItsInFlightRequests() throws {
        let stack = try Stack(workers: 2)
        let workers = stack.workers
        let load = stack.load(count: 3000)
        stack.supervisor.send(SIGTERM)
        #expect(stack.supervisor.waitForExit(seconds: 40) == 0, "the supervisor exits 0: \(stack.supervisor.output.suffix(400))")
        _ = load.take(seconds: 120)
        for pid in workers { #expect(!processIsAlive(pid)) }
        #expect(!stack.nginx.errorLog.contains("prematurely closed"), "no response cut off")
        #expect(stack.supervisor.output.contains("stopped: every worker has finished"))
    }

    /// A SIGTERM that reaches the supervisor while its workers start is
    /// passed on the moment they are ready, and each stops at once. Found by
    /// stopping session-lab right after its start: a worker's SIGTERM
    /// handler was armed some time after it said it was ready, and a signal
    /// in between was dropped, so the supervisor waited its 30 s and killed
    /// the worker.
    @Test func sigtermWhileWorkersStartStopsThemAtOnce() throws {
        for round in 1...4 {
            let directory = try TemporaryDirectory("gimlet-early-stop")
            let supervisor = try ManagedProcess(
                "hello", executable: try Repository.binary("hello"),
                arguments: ["--fastcgi", "unix:" + directory.file("hello.sock"), "--workers", "2", "--threads", "2"],
                outputPath: directory.file("hello.log"))
            // Both workers spawned, neither ready yet (or only just).
            #expect(waitUntil(seconds: 15) { supervisor.output.components(separatedBy: "worker started").count == 3 },
                    "\(supervisor.output)")
            let workers = childPIDs(of: supervisor.pid)
            supervisor.send(SIGTERM)
            #expect(supervisor.waitForExit(seconds: 25) == 0, "round \(round): \(supervisor.output.suffix(600))")
            #expect(!supervisor.output.contains("killing them"), "round \(round): \(supervisor.output.suffix(600))")
            for pid in workers { #expect(!processIsAlive(pid)) }
        }
    }

    @Test func spawnFCGIForksAndGimletDoesNotSupervise() throws {
        let directory = try TemporaryDirectory("gimlet-spawn")
        let socket = directory.file("hello.sock")
        let status = try runDaemonizer(
            try Tool.spawnFCGI(),
            ["-s", socket, "-M", "0666", "-F", "2", "-P", directory.file("hello.pid"), "--", try Repository.binary("hello"), "--threads", "2"],
            outputPath: directory.file("spawn.log"))
        #expect(status == 0)
        let pids = ((try? String(contentsOfFile: directory.file("hello.pid"), encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        defer { for pid in pids { kill(pid, SIGTERM) } }
        #expect(pids.count == 2)
        let nginx = try Nginx(socket: socket)
        let client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        #expect(waitUntil(seconds: 10) { (try? client.get("/").status) == 200 })
        let results = try client.parallelGets(count: 200, connections: 16) { "/hello/n\($0)" }
        #expect(results.enumerated().allSatisfy { $0.element.body == "hello, n\($0.offset)" })
        for pid in pids { #expect(childPIDs(of: pid).isEmpty, "no supervisor under spawn-fcgi") }
    }
}
