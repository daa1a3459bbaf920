import Foundation
import Testing

/// `examples/hello` behind a real nginx, started both ways users start it.
@Suite(.serialized) struct HelloBehindNginx {
    enum Launch: String, CaseIterable, CustomTestStringConvertible {
        case fastcgiOption = "hello --fastcgi unix:…"
        case spawnFCGI = "spawn-fcgi -s … -- hello"
        case scgiOption = "hello --scgi unix:… (nginx scgi_pass)"
        var testDescription: String { rawValue }
    }

    /// hello + nginx, stopped when the value goes away.
    final class Stack: @unchecked Sendable {
        // @unchecked: every stored property is immutable after init.
        let directory: TemporaryDirectory
        let socket: String
        let app: ManagedProcess?
        let spawned: PIDFileProcess?
        let nginx: Nginx
        let client: HTTPClient

        init(_ launch: Launch, threads: Int = 4) throws {
            directory = try TemporaryDirectory("gimlet-hello")
            socket = directory.file("hello.sock")
            let hello = try Repository.binary("hello")
            switch launch {
            case .fastcgiOption:
                app = try ManagedProcess(
                    "hello", executable: hello,
                    arguments: ["--fastcgi", "unix:" + socket, "--socket-mode", "666", "--threads", "\(threads)", "--max-body", "2m"],
                    outputPath: directory.file("hello.log"))
                spawned = nil
            case .spawnFCGI:
                let status = try runDaemonizer(
                    try Tool.spawnFCGI(),
                    ["-s", socket, "-M", "0666", "-P", directory.file("hello.pid"), "--", hello, "--threads", "\(threads)", "--max-body", "2m"],
                    outputPath: directory.file("spawn-fcgi.log"))
                guard status == 0 else {
                    let log = (try? String(contentsOfFile: directory.file("spawn-fcgi.log"), encoding: .utf8)) ?? ""
                    throw SetupError("spawn-fcgi exited \(status): \(log)")
                }
                spawned = try PIDFileProcess(pidFile: directory.file("hello.pid"))
                app = nil
            case .scgiOption:
                app = try ManagedProcess(
                    "hello", executable: hello,
                    arguments: ["--scgi", "unix:" + socket, "--socket-mode", "666", "--threads", "\(threads)", "--max-body", "2m"],
                    outputPath: directory.file("hello.log"))
                spawned = nil
            }
            nginx = try Nginx(socket: socket, config: launch == .scgiOption ? "gimlet-scgi.conf" : "gimlet.conf")
            client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
            let client = self.client
            guard waitUntil(seconds: 10, { (try? client.get("/").status) == 200 }) else {
                throw SetupError("hello did not answer through nginx: \(app?.output ?? "") \(nginx.errorLog)")
            }
        }

        deinit {
            nginx.process.stop()
            app?.stop()
            spawned?.stop()
        }
    }

    @Test(arguments: Launch.allCases)
    func routesStatusesAndHeaders(launch: Launch) throws {
        let stack = try Stack(launch)
        let client = stack.client

        let root = try client.get("/")
        #expect(root.status == 200)
        #expect(root.text == "hello")
        #expect(root.header("Content-Type") == "text/plain; charset=utf-8")

        #expect(try client.get("/hello/world").text == "hello, world")
        #expect(try client.get("/hello/J%C3%BCrgen%20M").text == "hello, Jürgen M")
        #expect(try client.get("/hello/a%2Fb?x=1").text == "hello, a/b")

        let head = try client.request("HEAD", "/hello/world")
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "12")
        #expect(head.body.isEmpty)

        let missing = try client.get("/nope")
        #expect(missing.status == 404)
        let wrongMethod = try client.request("DELETE", "/hello/world")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD")
        #expect(try client.request("GET", "/echo").header("Allow") == "POST")

        let env = try client.get("/env?q=1&name=J%C3%BCrgen+M%26M", headers: ["X-Custom": "yes"])
        let lines = env.text.split(separator: "\n").map(String.init)
        #expect(lines == lines.sorted())
        #expect(lines.contains("REQUEST_METHOD=GET"))
        #expect(lines.contains("QUERY_STRING=q=1&name=J%C3%BCrgen+M%26M"), "the query string arrives undecoded")
        #expect(lines.contains("HTTP_X_CUSTOM=yes"))
        #expect(lines.contains("REQUEST_URI=/env?q=1&name=J%C3%BCrgen+M%26M"))
    }

    @Test(arguments: Launch.allCases)
    func bodiesAndLimits(launch: Launch) throws {
        let stack = try Stack(launch)
        let client = stack.client
        var generator = SystemRandomNumberGenerator()
        let mebibyte = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }

        let echoed = try client.request("POST", "/echo", body: mebibyte, headers: ["Content-Type": "application/x-test"])
        #expect(echoed.status == 200)
        #expect(echoed.header("Content-Type") == "application/x-test")
        #expect(echoed.body.count == mebibyte.count)
        #expect(echoed.body == mebibyte, "1 MiB body must come back byte for byte")

        // Past --body-buffer (1 MiB) the body reaches the handler in a temporary file.
        let spooled = try client.request("POST", "/echo", body: mebibyte + [1], headers: ["Content-Type": "application/x-test"])
        #expect(spooled.status == 200)
        #expect(spooled.body == mebibyte + [1], "a spooled body must come back byte for byte")

        // Past --max-body 2m: nginx (8m) passes it, the app answers 413 itself, not a 502.
        let tooLarge = try client.request("POST", "/echo", body: mebibyte + mebibyte + [1])
        #expect(tooLarge.status == 413)
        #expect(tooLarge.text == "request body is larger than 2097152 bytes")

        // The worker that drained the oversized body still serves.
        for _ in 0..<8 { #expect(try client.get("/").status == 200) }

        let empty = try client.request("POST", "/echo", body: [])
        #expect(empty.status == 200)
        #expect(empty.body.isEmpty)
    }

    @Test(arguments: Launch.allCases)
    func concurrentRequestsAllAnsweredCorrectly(launch: Launch) throws {
        let stack = try Stack(launch)
        let results = try stack.client.parallelGets(count: 200, connections: 16) { "/hello/n\($0)" }
        for (index, result) in results.enumerated() {
            #expect(result.status == 200, "request \(index)")
            #expect(result.body == "hello, n\(index)", "request \(index)")
        }
    }

    @Test func sigtermUnderLoadFinishesInFlightRequestsAndExitsZero() throws {
        let stack = try Stack(.fastcgiOption, threads: 2)
        guard let app = stack.app else { throw SetupError("no app process") }
        let client = stack.client
        let total = 3000
        let loadEnded = Handoff<Bool>()
        let load = Thread {
            _ = try? client.parallelGets(count: total, connections: 16) { "/hello/n\($0)" }
            loadEnded.put(true)
        }
        // Wait until the load is under way, then ask hello to stop.
        let marker = stack.directory.file("par-100")
        load.start()
        #expect(waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: marker) })
        app.send(SIGTERM)
        #expect(app.waitForExit(seconds: 15) == 0, "hello must exit 0 after SIGTERM: \(app.output)")
        #expect(app.output.contains("stopped: every accepted request has finished"))

        // Collect: every answer is either complete and right, or nginx's own
        // 502 for a connection hello no longer accepted.
        #expect(loadEnded.take(seconds: 60) == true, "every request of the load has its answer")
        var succeeded = 0, refused = 0
        for index in 0..<total {
            let body = (try? String(contentsOfFile: stack.directory.file("par-\(index)"), encoding: .utf8)) ?? ""
            if body == "hello, n\(index)" {
                succeeded += 1
            } else {
                refused += 1
                #expect(!body.hasPrefix("hello"), "request \(index) got a truncated or wrong answer: \(body)")
            }
        }
        #expect(succeeded > 100)
        #expect(refused > 0, "the stop must have happened during the load")
        #expect(!stack.nginx.errorLog.contains("prematurely closed"), "a response was cut off: \(stack.nginx.errorLog)")
        #expect(!FileManager.default.fileExists(atPath: stack.socket), "hello removes its socket when it stops")
    }

    @Test func refusesToStartWithoutASocketAndSaysHow() throws {
        let directory = try TemporaryDirectory()
        let hello = try Repository.binary("hello")
        let bare = try ManagedProcess("hello", executable: hello, arguments: [], outputPath: directory.file("out"))
        #expect(bare.waitForExit(seconds: 10) == 1)
        #expect(bare.output.contains("--fastcgi"))
        #expect(bare.output.contains("spawn-fcgi"))

        let badThreads = try ManagedProcess("hello", executable: hello, arguments: ["--fastcgi", "127.0.0.1:19999", "--threads", "0"],
                                            outputPath: directory.file("out2"))
        #expect(badThreads.waitForExit(seconds: 10) == 1)
        #expect(badThreads.output.contains("--threads must be a whole number"))

        let fromEnvironment = try ManagedProcess(
            "hello", executable: hello, arguments: [], outputPath: directory.file("out3"),
            environment: ["GIMLET_FASTCGI": "nonsense", "PATH": "/usr/bin:/bin"])
        #expect(fromEnvironment.waitForExit(seconds: 10) == 1)
        #expect(fromEnvironment.output.contains("GIMLET_FASTCGI"))
    }
}
