import Foundation
import Testing

/// The operator's tools through real nginx and the supervisor: ping,
/// status and Prometheus metrics across workers, the slow-request log,
/// request timeouts that free a stuck worker, recycling.
@Suite(.serialized) struct Operations {
    typealias Stack = SessionLabBehindNginx.Stack

    /// The status page as JSON.
    static func status(_ stack: Stack) throws -> [String: Any] {
        let answer = try stack.client.get("/-/status")
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "application/json")
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any], "\(answer.text)")
    }

    static func number(_ object: [String: Any], _ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }

    /// Under `--workers 3`, whichever worker answers, the totals are every
    /// worker's; the Prometheus text parses with prometheus_client's parser.
    @Test func statusCoversEveryWorkerAndParses() throws {
        let stack = try Stack(["--workers", "3", "--threads", "2", "--status-path", "/-/status",
                               "--metrics-path", "/-/metrics"])
        _ = waitUntil(seconds: 10) { childPIDs(of: stack.app.pid).count == 3 }
        // The probe's /hello calls before this count too: start from what the page says.
        let before = Self.number(try Self.status(stack), "requests")
        let answers = try stack.client.parallelGets(count: 90, connections: 6) { "/set/k\($0)/v" }
        #expect(answers.allSatisfy { $0.status == 200 })
        let status = try Self.status(stack)
        // The first status request counts once it is answered, not in its own figures.
        #expect(Self.number(status, "requests") == before + 1 + 90, "\(status)")
        let byStatus = try #require(status["requests_by_status"] as? [String: Any])
        #expect(Self.number(byStatus, "2xx") == before + 1 + 90)
        let workers = try #require(status["workers"] as? [[String: Any]])
        #expect(workers.count == 3, "\(workers)")
        #expect(Set(workers.map { Self.number($0, "pid") }) == Set(childPIDs(of: stack.app.pid).map(Int.init)))
        #expect(workers.reduce(0) { $0 + Self.number($1, "requests") } == before + 1 + 90)
        // More than one worker took part: the totals are not one process's.
        #expect(workers.filter { Self.number($0, "requests") > 0 }.count >= 2, "\(workers)")
        let backend = try #require(status["session_backend"] as? [String: Any])
        #expect(Self.number(backend, "round_trips") == 90, "one commit per /set: \(backend)")
        // Each worker's SQLite pool, from its own process: at least the
        // connection that made the schema, none lost, none in use between requests.
        var open = 0
        for worker in workers {
            let connections = try #require(worker["session_backend_connections"] as? [String: Any], "\(worker)")
            open += Self.number(connections, "open")
            #expect(Self.number(connections, "open") >= 1, "\(worker)")
            #expect(Self.number(connections, "created") >= Self.number(connections, "open"))
            #expect(Self.number(connections, "discarded") == 0)
        }
        #expect(Self.number(backend, "connections_open") == open)
        // The one request in flight is the status request itself.
        #expect(Self.number(status, "in_flight") == 1)
        #expect(Self.number(status, "busy_threads") + Self.number(status, "idle_threads") == 6)

        let metrics = try stack.client.get("/-/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let file = stack.directory.file("metrics.txt")
        try Data(metrics.body).write(to: URL(fileURLWithPath: file))
        let parsed = try runToCompletion("/usr/bin/python3", ["-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for sample in family.samples:
                    print(sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())), sample.value)
            """, file])
        let lines = String(decoding: parsed.output, as: UTF8.self)
        #expect(parsed.status == 0, "\(String(decoding: parsed.errors, as: UTF8.self))")
        // Both status requests count by now; this one is still in flight.
        #expect(lines.contains("gimlet_requests_total status=2xx \(Double(before + 2 + 90))"), "\(lines)")
        #expect(lines.contains("gimlet_request_duration_seconds_bucket le=+Inf \(Double(before + 2 + 90))"), "\(lines)")
        #expect(lines.contains("gimlet_session_backend_round_trips_total  90.0"), "\(lines)")
        #expect(lines.contains("gimlet_session_backend_connections state=idle"), "\(lines)")
        // The app's own swift-metrics counter (session-lab bootstraps
        // ScoreboardMetrics), counted in three processes, summed: one per /set.
        #expect(lines.contains("lab_sets_total  90.0"), "\(lines)")
        // One series, one record, though the workers made it at the same
        // moment (the ASan run once showed two: MetricSeries.resolve).
        #expect(lines.contains("gimlet_metric_series state=used 1.0"), "\(lines)")
        // The status page also speaks Prometheus when asked.
        #expect(try stack.client.get("/-/status?format=prometheus").text.contains("# TYPE gimlet_requests_total counter"))

        // Every worker's commits, and the transactions that applied them: the
        // other workers' as of their last heartbeat (at most 100 ms old).
        var commits: [String: Any] = [:]
        #expect(waitUntil(seconds: 5) {
            commits = ((try? Self.status(stack))?["session_backend"] as? [String: Any]) ?? [:]
            return Self.number(commits, "commits") == 90
        }, "\(commits)")
        #expect((1...90).contains(Self.number(commits, "commit_transactions")), "\(commits)")
        let text = try stack.client.get("/-/metrics").text
        #expect(text.contains("\ngimlet_session_commits_total 90\n"), "\(text)")
        #expect(text.contains("\ngimlet_session_commit_transactions_total \(Self.number(commits, "commit_transactions"))\n"))
    }

    /// `--drain 2`: after SIGTERM the ping answers 503 while the app still
    /// serves, then the process stops with status 0.
    @Test(arguments: [false, true]) func pingFlipsTo503WhileAStopDrains(workers: Bool) throws {
        let stack = try Stack(["--ping-path", "/-/ping", "--drain", "2"] + (workers ? ["--workers", "2"] : []))
        let pong = try stack.client.get("/-/ping")
        #expect(pong.status == 200)
        #expect(pong.text == "pong")
        stack.app.send(SIGTERM)
        #expect(waitUntil(seconds: 2) { (try? stack.client.get("/-/ping").status) == 503 })
        #expect(try stack.client.get("/hello").status == 200, "still serving while draining")
        #expect(stack.app.waitForExit(seconds: 15) == 0, "\(stack.app.output)")
    }

    /// A request slower than `--slow-request` is logged while it runs, with
    /// the stack of its thread, and when it ends, with its phases.
    @Test func aSlowRequestIsLoggedWithItsStackAndPhases() throws {
        let stack = try Stack(["--slow-request", "200", "--status-path", "/-/status"])
        #expect(try stack.client.get("/sleep/600").status == 200)
        #expect(try stack.client.get("/hello").status == 200)
        let log = stack.app.output
        let running = try #require(log.split(separator: "\n").first { $0.contains("slow request still running") }, "\(log)")
        #expect(running.contains("path=/sleep/600"))
        #expect(running.contains("usleep"), "the stack shows where it is: \(running)")
        let finished = try #require(log.split(separator: "\n").first { $0.hasSuffix("] slow request") }, "\(log)")
        #expect(finished.contains("route=/sleep/:ms"))
        #expect(finished.contains("phases_ms=body"))
        #expect(!log.contains("path=/hello"), "a fast request is not logged")
        #expect(Self.number(try Self.status(stack), "slow_requests") == 1)
    }

    /// `--request-timeout 1`: an async handler still waiting is cancelled and answered 504.
    @Test func anAsyncHandlerPastTheTimeoutGets504() throws {
        let stack = try Stack(["--request-timeout", "1"])
        let started = Date()
        let answer = try stack.client.get("/async/sleep/20000")
        #expect(answer.status == 504)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try stack.client.get("/async/sleep/10").status == 200)
    }

    /// A synchronous handler that never returns: its worker is killed and
    /// replaced after the timeout, its stack logged first; the other
    /// workers' requests all succeed meanwhile.
    @Test func aStuckWorkerIsKilledAndReplaced() throws {
        let stack = try Stack(["--workers", "2", "--threads", "2", "--request-timeout", "1", "--status-path", "/-/status"])
        _ = waitUntil(seconds: 10) { childPIDs(of: stack.app.pid).count == 2 }
        let before = childPIDs(of: stack.app.pid)
        let stuck = Handoff<Result<HTTPResult, any Error>>()
        let client = stack.client
        Thread { stuck.put(Result { try client.get("/sleep/3600000") }) }.start()
        #expect(waitUntil(seconds: 5) { stack.app.output.contains("path=/sleep/3600000") })
        // Meanwhile, everything else is answered.
        let others = try stack.client.parallelGets(count: 40, connections: 4) { _ in "/hello" }
        #expect(others.allSatisfy { $0.status == 200 }, "\(others.map(\.status))")
        let answer = try #require(try stuck.take(seconds: 20)?.get())
        #expect(answer.status == 502, "nginx reports the upstream failure: \(answer.status)")
        let log = stack.app.output
        let critical = try #require(log.split(separator: "\n").first { $0.contains("request past the 1 s timeout") }, "\(log)")
        #expect(critical.contains("usleep"), "its stack: \(critical)")
        #expect(log.contains("killing it and starting another"))
        #expect(waitUntil(seconds: 10) {
            let now = childPIDs(of: stack.app.pid)
            return now.count == 2 && now != before
        }, "a replacement runs: \(stack.app.output)")
        #expect(try stack.client.get("/hello").status == 200)
    }

    /// Without `--workers` nothing can replace the process: a synchronous
    /// request stuck past the timeout is logged at `critical` with its
    /// stack, again every timeout interval, and still answers when it returns.
    @Test func aStuckRequestWithoutWorkersIsLoggedEveryInterval() throws {
        let stack = try Stack(["--threads", "2", "--request-timeout", "1"])
        let answer = try stack.client.get("/sleep/3500")
        #expect(answer.status == 200, "nothing kills a lone process's request")
        let lines = stack.app.output.split(separator: "\n").filter { $0.contains("request past the 1 s timeout") }
        #expect(lines.count >= 2, "once a second while it runs: \(stack.app.output)")
        #expect(lines.allSatisfy { $0.contains(" critical ") && $0.contains("keeps its thread until it returns") })
        #expect(lines.allSatisfy { $0.contains("path=/sleep/3500") && $0.contains("usleep") }, "\(lines)")
        let id = try #require(answer.header("X-Request-Id"))
        #expect(lines.allSatisfy { $0.contains("request_id=\(id)") }, "\(lines)")
        #expect(stack.app.isRunning)
        #expect(try stack.client.get("/hello").status == 200)
    }

    /// A worker that stops entirely (SIGSTOP) goes silent on the scoreboard
    /// and is killed and replaced after the timeout.
    @Test func aStoppedWorkerIsDetectedAndReplaced() throws {
        let stack = try Stack(["--workers", "2", "--threads", "2", "--request-timeout", "1"])
        // Both serving, not only spawned: a worker stopped before it is ready
        // is the start-up timeout's (30 s), not the silence watch's. Under
        // ASan on a busy machine, the fresh-clone CI once stopped one too early.
        #expect(waitUntil(seconds: 30) { stack.app.output.components(separatedBy: "serving FastCGI").count - 1 == 2 },
                "\(stack.app.output)")
        let victim = try #require(childPIDs(of: stack.app.pid).first)
        kill(victim, SIGSTOP)
        defer { kill(victim, SIGKILL) }
        #expect(waitUntil(seconds: 10) { stack.app.output.contains("worker \(victim) made no progress") }, "\(stack.app.output)")
        #expect(stack.app.output.contains("stopped (T)"))
        #expect(waitUntil(seconds: 10) {
            let now = childPIDs(of: stack.app.pid)
            return now.count == 2 && !now.contains(victim)
        })
        let answers = try stack.client.parallelGets(count: 20, connections: 4) { _ in "/hello" }
        #expect(answers.allSatisfy { $0.status == 200 })
    }

    /// `--max-requests 300` under wrk load: workers are recycled, each
    /// successor started before its predecessor stops, and no request fails.
    @Test func maxRequestsRecyclesUnderLoadWithoutAFailedRequest() throws {
        let stack = try Stack(["--workers", "2", "--threads", "2", "--max-requests", "300"])
        let wrk = Wrk(scratch: stack.directory)
        let result = try wrk.run(stack.nginx.baseURL + "/hello", seconds: 4, connections: 8)
        #expect(result.requests > 1500, "\(result)")
        #expect(result.failures == 0, "\(result)")
        #expect(result.socketErrors.isEmpty, "\(result)")
        let recycled = stack.app.output.components(separatedBy: "recycled after --max-requests").count - 1
        #expect(recycled >= 2, "\(stack.app.output)")
        #expect(!stack.app.output.contains("died young"))
        // A recycled worker may still be finishing its last requests.
        #expect(waitUntil(seconds: 10) { childPIDs(of: stack.app.pid).count == 2 })
    }
}
