import Foundation
import Testing
@testable import GimletSQLite

/// session-lab on the real backends, behind a real nginx.
@Suite(.serialized) struct BackendsBehindNginx {
    enum Store: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, redis
        var testDescription: String { rawValue }
    }

    /// The backend server (Redis) or file (SQLite) and session-lab in front of it.
    final class Setup: @unchecked Sendable {
        // @unchecked: immutable after init.
        let redis: RedisServer?
        let files: TemporaryDirectory
        let stack: SessionLabBehindNginx.Stack

        init(_ store: Store, redisOptions: String = "", sqliteOptions: String = "", threads: Int = 4) throws {
            files = try TemporaryDirectory("gimlet-store")
            switch store {
            case .sqlite:
                redis = nil
                stack = try SessionLabBehindNginx.Stack(["--backend", "sqlite://" + files.file("sessions.sqlite") + sqliteOptions,
                                                         "--threads", "\(threads)"])
            case .redis:
                let redis = try RedisServer()
                self.redis = redis
                stack = try SessionLabBehindNginx.Stack(["--backend", redis.url + redisOptions, "--threads", "\(threads)"])
            }
        }
    }

    @Test(arguments: Store.allCases)
    func concurrentWritesToOneSessionLoseNothing(store: Store) throws {
        let setup = try Setup(store)
        let stack = setup.stack
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        let results = try stack.client.parallelGets(count: 16, connections: 16, headers: ["Cookie": stack.cookieHeader]) {
            "/set/k\($0)/v\($0)"
        }
        #expect(results.allSatisfy { $0.status == 200 && $0.body == "ok" })
        #expect(try stack.client.get("/len").text == "17")
        let keys = Set(try stack.client.get("/iter").text.split(separator: "\n").map(String.init))
        #expect(keys == Set((0..<16).map { "k\($0)" } + ["seed"]), "no lost update")
    }

    /// Read-modify-write of one key by sixteen concurrent requests of one
    /// session, ten rounds: `/counter` may re-run on a conflict, so every
    /// increment lands; `/counter/once` may not, so a request that lost the
    /// race answers 409 and stores nothing. Either way, the number of 2xx
    /// answers is exactly what the counter went up by.
    @Test(arguments: Store.allCases)
    func concurrentIncrementsOfOneKeyLoseNothing(store: Store) throws {
        let setup = try Setup(store, threads: 8)
        let stack = setup.stack
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        let cookie = stack.cookieHeader
        var answers: [Int: Int] = [:]
        for round in 0..<10 {
            let results = try stack.client.parallelGets(count: 16, connections: 16, headers: ["Cookie": cookie]) {
                "/counter?round=\(round)&n=\($0)"
            }
            for result in results { answers[result.status, default: 0] += 1 }
        }
        #expect(answers == [200: 160], "every retryable increment answered 200: \(answers)")
        let counted = try stack.client.get("/get/counter", headers: ["Cookie": cookie]).text
        #expect(counted == "160", "lost increments: 160 answered 200, the counter says \(counted)")

        var strict: [Int: Int] = [:]
        for round in 0..<10 {
            let results = try stack.client.parallelGets(count: 16, connections: 16, headers: ["Cookie": cookie]) {
                "/counter/once?round=\(round)&n=\($0)"
            }
            for result in results { strict[result.status, default: 0] += 1 }
        }
        #expect(Set(strict.keys).isSubset(of: [200, 409]), "\(strict)")
        let stored = Int(try stack.client.get("/get/counter", headers: ["Cookie": cookie]).text) ?? -1
        #expect(stored == 160 + (strict[200] ?? 0), "a 200 for every increment stored, and no other: \(strict), counter \(stored)")
    }

    @Test func redisDownMeans503ThenRecoversWithoutARestart() throws {
        let setup = try Setup(.redis, redisOptions: "?timeout_ms=300")
        let (stack, redis) = (setup.stack, try #require(setup.redis))
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        let cookie = stack.cookieHeader

        let finished = Handoff<[(status: Int, body: String)]>()
        let started = ContinuousClock.now
        Thread {
            finished.put((try? stack.client.parallelGets(count: 400, connections: 8, headers: ["Cookie": cookie]) {
                "/get/seed?n=\($0)"
            }) ?? [])
        }.start()
        #expect(waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: stack.directory.file("par-50")) })
        redis.stop()
        let results = try #require(finished.take(seconds: 60))
        #expect(ContinuousClock.now - started < .seconds(30), "no request hangs past the timeout")
        #expect(results.allSatisfy { [200, 503].contains($0.status) }, "only answers and 503s: \(Set(results.map(\.status)))")
        #expect(results.contains { $0.status == 200 } && results.contains { $0.status == 503 })
        #expect(stack.app.isRunning, "session-lab survives the outage")
        #expect(stack.app.output.contains("session backend unavailable"))

        try redis.restart()  // empty: no persistence
        #expect(waitUntil(seconds: 10) { (try? stack.client.get("/set/back/1").status) == 200 })
        #expect(try stack.client.get("/get/back").text == "1")
    }

    /// Every pooled connection is dead after Redis restarts (or closes idle
    /// connections, or fails over): none may cost a request once Redis answers.
    @Test func noRequestFailsOnceARestartedRedisAnswers() throws {
        let setup = try Setup(.redis, redisOptions: "?timeout_ms=1000", threads: 8)
        let (stack, redis) = (setup.stack, try #require(setup.redis))
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        let cookie = stack.cookieHeader
        // Fill the pool: up to 8 connections, one per busy thread.
        let warm = try stack.client.parallelGets(count: 200, connections: 16, headers: ["Cookie": cookie]) { "/get/seed?warm=\($0)" }
        #expect(warm.allSatisfy { $0.status == 200 })
        redis.stop()
        try redis.restart()  // empty: no persistence
        let writes = try stack.client.parallelGets(count: 40, connections: 8, headers: ["Cookie": cookie]) { "/set/k\($0)/v" }
        let failed = writes.filter { $0.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) of 40 requests failed after the restart: \(Set(failed.map(\.status))) \(stack.app.output.suffix(600))")
        #expect(try stack.client.get("/len", headers: ["Cookie": cookie]).text == "40")
    }

    @Test func aStalledRedisAnswers503WithinTheTimeout() throws {
        let setup = try Setup(.redis, redisOptions: "?timeout_ms=300")
        let (stack, redis) = (setup.stack, try #require(setup.redis))
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        redis.process.send(SIGSTOP)
        defer { redis.process.send(SIGCONT) }
        let start = ContinuousClock.now
        #expect(try stack.client.get("/get/seed").status == 503)
        #expect(ContinuousClock.now - start < .seconds(3))
        redis.process.send(SIGCONT)
        #expect(waitUntil(seconds: 10) { (try? stack.client.get("/get/seed").text) == "0" })
    }

    @Test func aSQLiteLockPastTheBusyTimeoutIs503WithAClearLogLine() throws {
        let setup = try Setup(.sqlite, sqliteOptions: "?busy_timeout_ms=200")
        let stack = setup.stack
        #expect(try stack.client.get("/set/seed/0").text == "ok")
        let locker = try SQLiteConnection(path: setup.files.file("sessions.sqlite"), busyTimeoutMilliseconds: 0)
        try locker.execute("BEGIN EXCLUSIVE")
        let start = ContinuousClock.now
        #expect(try stack.client.get("/set/other/1").status == 503)
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(stack.app.output.contains("busy timeout of 200 ms"))
        try locker.execute("ROLLBACK")
        #expect(try stack.client.get("/set/other/1").status == 200)
        #expect(try stack.client.get("/get/seed").text == "0")
    }

    /// `spawn-fcgi -F 4`: four processes on one SQLite file, one session written from all of them.
    @Test func fourProcessesShareOneSQLiteFile() throws {
        let directory = try TemporaryDirectory("gimlet-forks")
        let socket = directory.file("lab.sock")
        let database = directory.file("sessions.sqlite")
        let status = try runDaemonizer(
            try Tool.spawnFCGI(),
            ["-s", socket, "-M", "0666", "-F", "4", "-P", directory.file("lab.pid"), "--",
             try Repository.binary("session-lab"), "--threads", "2", "--secret", SessionLabBehindNginx.secret,
             "--backend", "sqlite://" + database],
            outputPath: directory.file("spawn.log"))
        #expect(status == 0)
        let pids = ((try? String(contentsOfFile: directory.file("lab.pid"), encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        defer { for pid in pids { kill(pid, SIGTERM) } }
        #expect(pids.count == 4, "spawn-fcgi -F 4 writes four PIDs")
        let nginx = try Nginx(socket: socket)
        var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        client.cookieJar = directory.file("jar")
        #expect(waitUntil(seconds: 10) { (try? client.get("/hello").status) == 200 })
        #expect(try client.get("/set/seed/0").text == "ok")
        let cookie = ((try? String(contentsOfFile: directory.file("jar"), encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: "\t")
                return fields.count == 7 ? "\(fields[5])=\(fields[6])" : nil
            }.joined(separator: "; ")
        let results = try client.parallelGets(count: 64, connections: 16, headers: ["Cookie": cookie]) { "/set/k\($0)/v" }
        #expect(results.allSatisfy { $0.status == 200 }, "\(Set(results.map(\.status)))")
        #expect(try client.get("/len").text == "65", "every process's writes are in the one file")
        for pid in pids { #expect(processIsAlive(pid)) }
    }
}
