import Foundation
import Testing

/// Who may talk to the app's FastCGI or SCGI socket, and for how long
/// (issue 29, defect 3): a bare port is loopback, an address other hosts can
/// reach needs an allow-list of web servers, a refused peer is logged, and
/// a peer that stalls, trickles or idles holds no worker.
@Suite struct ListenerSecurity {
    /// The app on TCP behind a real nginx (`fastcgi_pass`/`scgi_pass` to 127.0.0.1:PORT).
    final class TCPStack: @unchecked Sendable {
        // @unchecked: immutable after init.
        let directory: TemporaryDirectory
        let port: Int
        let app: ManagedProcess
        let nginx: Nginx
        let client: HTTPClient

        init(scgi: Bool, listen: String = "127.0.0.1", extra: [String]) throws {
            directory = try TemporaryDirectory("gimlet-listener")
            port = try freeLoopbackPort()
            app = try ManagedProcess(
                "session-lab", executable: try Repository.binary("session-lab"),
                arguments: [scgi ? "--scgi" : "--fastcgi", "\(listen):\(port)", "--secret", SessionLabBehindNginx.secret,
                            "--backend", "memory:"] + extra,
                outputPath: directory.file("lab.log"))
            let port = port
            guard waitUntil(seconds: 10, { canConnect(port: port) }) else {
                throw SetupError("session-lab did not listen: \(app.output)")
            }
            nginx = try Nginx(socket: "", config: scgi ? "gimlet-scgi.conf" : "gimlet.conf") { template, nginxPort in
                template.replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(nginxPort);")
                    .replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "127.0.0.1:\(port)")
            }
            var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
            client.maxTime = 20
            self.client = client
        }

        deinit {
            nginx.process.stop()
            app.stop()
        }
    }

    /// The local addresses TCP sockets listen on at `port`, from /proc/net/tcp.
    func listeningAddresses(port: Int) throws -> [String] {
        let table = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        return table.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[3] == "0A" else { return nil }  // LISTEN
            let local = fields[1].split(separator: ":")
            guard local.count == 2, Int(local[1], radix: 16) == port, let raw = UInt32(local[0], radix: 16) else { return nil }
            // The kernel prints the address in host byte order (little-endian here).
            return [raw & 0xFF, raw >> 8 & 0xFF, raw >> 16 & 0xFF, raw >> 24].map { String($0) }.joined(separator: ".")
        }
    }

    @Test(arguments: ["--fastcgi", "--scgi"])
    func aBarePortListensOnLoopbackOnly(option: String) throws {
        let directory = try TemporaryDirectory("gimlet-bare-port")
        let port = try freeLoopbackPort()
        let app = try ManagedProcess("hello", executable: try Repository.binary("hello"), arguments: [option, ":\(port)"],
                                     outputPath: directory.file("hello.log"))
        defer { app.stop() }
        #expect(waitUntil(seconds: 10) { canConnect(port: port) }, "\(app.output)")
        #expect(try listeningAddresses(port: port) == ["127.0.0.1"], "a bare port is loopback, not every interface")
    }

    /// Listening where other hosts can reach, without saying which web
    /// servers may connect, stops the start with one line; with the list it
    /// starts. The same for a socket spawn-fcgi binds on every interface
    /// (its `-a` defaults to 0.0.0.0), and under the supervisor.
    @Test(arguments: [["--fastcgi"], ["--scgi"], ["--fastcgi", "--workers", "2"], ["spawn-fcgi"]])
    func aSocketOtherHostsCanReachNeedsAnAllowList(how: [String]) throws {
        let directory = try TemporaryDirectory("gimlet-exposed")
        let port = try freeLoopbackPort()
        func start(_ extra: [String]) throws -> ManagedProcess {
            let hello = try Repository.binary("hello")
            if how == ["spawn-fcgi"] {
                return try ManagedProcess("spawn-fcgi", executable: try Tool.spawnFCGI(),
                                          arguments: ["-n", "-a", "0.0.0.0", "-p", "\(port)", "--", hello] + extra,
                                          outputPath: directory.file("spawn-\(extra.count).log"))
            }
            return try ManagedProcess("hello", executable: hello, arguments: [how[0], "0.0.0.0:\(port)"] + how.dropFirst() + extra,
                                      outputPath: directory.file("hello-\(extra.count).log"))
        }
        let refused = try start([])
        #expect(refused.waitForExit(seconds: 15) == 1, "\(refused.output)")
        #expect(refused.output.contains("0.0.0.0:\(port)") && refused.output.contains("--allowed-clients"),
                "names the address and the fix: \(refused.output)")
        #expect(refused.output.split(separator: "\n").count == 1, "one line: \(refused.output)")

        let allowed = try start(["--allowed-clients", "127.0.0.1"])
        defer { allowed.stop() }
        #expect(waitUntil(seconds: 10) { canConnect(port: port) }, "starts with the list: \(allowed.output)")
        #expect(allowed.isRunning, "\(allowed.output)")
    }

    /// nginx connects from 127.0.0.1: refused (502, and a log line naming
    /// the peer) unless the list names it. Before the fix nobody was refused.
    @Test(arguments: [false, true])
    func aPeerNotOnTheListIsRefusedAndLogged(scgi: Bool) throws {
        let outsider = try TCPStack(scgi: scgi, listen: "0.0.0.0", extra: ["--allowed-clients", "10.9.9.9,192.168.77.0/24"])
        let answer = try outsider.client.get("/hello")
        #expect(answer.status == 502, "nginx's connection is refused: \(answer.status) \(answer.text)")
        #expect(waitUntil(seconds: 5) { outsider.app.output.contains("refused a \(scgi ? "SCGI" : "FastCGI") connection") },
                "\(outsider.app.output)")
        #expect(outsider.app.output.contains("client=127.0.0.1") && outsider.app.output.contains("security_event=refused_connection"))
        // A flood of refused connections is logged a few lines at a time, not once each.
        // Each refused connection closes only once its refusal is counted and
        // logged: once every one has seen its close, every line is written.
        for _ in 0..<20 { #expect(try RawClient(port: outsider.port).readToEnd().isEmpty) }
        #expect(outsider.app.output.components(separatedBy: "refused a").count - 1 == 3, "three lines a minute per peer")

        let webServer = try TCPStack(scgi: scgi, listen: "0.0.0.0", extra: ["--allowed-clients", "10.9.9.9,127.0.0.1"])
        #expect(try webServer.client.get("/hello").text == "hello")
    }

    /// One worker thread, a one-second read timeout: a peer that sends half
    /// a request and stalls, and one that trickles a byte at a time, each
    /// lose their connection within the timeout (per request, however the
    /// bytes keep coming), and peers that connect and send nothing hold no
    /// worker at all. nginx's requests are answered meanwhile. Before the
    /// fix, each of them held the only worker for ever.
    @Test(arguments: [false, true])
    func stalledTricklingAndIdlePeersHoldNoWorker(scgi: Bool) throws {
        let stack = try TCPStack(scgi: scgi, extra: ["--threads", "1", "--read-timeout", "1"])
        #expect(try stack.client.get("/hello").text == "hello")
        let request = scgi ? scgiRequest([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/hello"), ("SCRIPT_NAME", ""),
                                          ("PATH_INFO", "/hello"), ("QUERY_STRING", "")])
                           : fastCGIRequest([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/hello"), ("SCRIPT_NAME", ""),
                                             ("PATH_INFO", "/hello"), ("QUERY_STRING", "")])

        // Idle: three connections that say nothing.
        let idle = try (0..<3).map { _ in try RawClient(port: stack.port) }
        #expect(try stack.client.get("/hello").text == "hello", "idle connections wait without a worker")

        // Stalled: half of a request, then nothing.
        let stalled = try RawClient(port: stack.port)
        stalled.send(Array(request.prefix(request.count / 2)))
        let started = ContinuousClock.now
        #expect(stalled.readToEnd().isEmpty, "closed without an answer")
        #expect(ContinuousClock.now - started < .seconds(8), "within the read timeout (1 s), not the client's own 10 s")
        #expect(try stack.client.get("/hello").text == "hello")

        // Trickling: a byte every 100 ms keeps coming, and the request is still cut at its timeout.
        let cut = Handoff<Bool>()
        let port = stack.port
        Thread {
            guard let trickler = try? RawClient(port: port) else { cut.put(false); return }
            for byte in request.dropLast() {
                if trickler.send([byte]) != 0 { cut.put(true); return }
                Thread.sleep(forTimeInterval: 0.1)
            }
            cut.put(false)
        }.start()
        #expect(cut.take(seconds: 15) == true, "the trickling peer lost its connection before it had sent the request")
        #expect(try stack.client.get("/hello").text == "hello")
        #expect(stack.app.output.contains("not read within the read timeout"), "\(stack.app.output)")
        withExtendedLifetime(idle) {}
    }
}
