import Foundation
import Testing

/// The deploy/ recipes not covered by the app suites: systemd units and the
/// multi-host nginx configuration.
@Suite(.serialized) struct DeployRecipes {
    @Test(arguments: ["gimlet-app.service", "gimlet-spawn-fcgi.service"])
    func systemdUnitsVerify(unit: String) throws {
        let analyze = try Tool.path("systemd-analyze", package: "systemd")
        _ = try Tool.spawnFCGI()
        let directory = try TemporaryDirectory()
        // The units name /opt/gimlet/bin/app; verify checks that it is executable.
        let text = try String(contentsOf: Repository.root.appendingPathComponent("deploy/systemd/" + unit), encoding: .utf8)
        #expect(text.contains("/opt/gimlet/bin/app"))
        try text.replacingOccurrences(of: "/opt/gimlet/bin/app", with: try Repository.binary("hello"))
            .write(toFile: directory.file(unit), atomically: true, encoding: .utf8)
        let verify = try ManagedProcess("systemd-analyze", executable: analyze, arguments: ["verify", directory.file(unit)],
                                        outputPath: directory.file("verify.log"))
        #expect(verify.waitForExit(seconds: 60) == 0, "\(verify.output)")
        #expect(verify.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no warnings: \(verify.output)")
    }

    /// Two session-lab hosts on TCP, one Redis, nginx with TLS and an upstream:
    /// a session made through one host is read through the other, and cookies are Secure.
    @Test func severalHostsBehindAnUpstreamShareSessionsInRedis() throws {
        let redis = try RedisServer()
        let directory = try TemporaryDirectory("gimlet-upstream")
        let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
        var hosts: [ManagedProcess] = []
        defer { hosts.forEach { $0.stop() } }
        for (index, port) in ports.enumerated() {
            hosts.append(try ManagedProcess(
                "session-lab", executable: try Repository.binary("session-lab"),
                arguments: ["--fastcgi", "127.0.0.1:\(port)", "--threads", "2", "--secret", SessionLabBehindNginx.secret,
                            "--backend", redis.url],
                outputPath: directory.file("host\(index).log")))
        }
        for port in ports { #expect(waitUntil(seconds: 10) { canConnect(port: port) }) }

        let recipe = try UpstreamRecipe(ports: ports, directory: directory)
        let client = recipe.client()
        let first = try client.get("/set/ring/one")
        #expect(first.status == 200)
        #expect(first.headers("Set-Cookie").allSatisfy { $0.contains("; Secure") }, "HTTPS reaches the app")
        // Round-robin: consecutive requests alternate hosts; every one sees the session.
        for _ in 0..<6 { #expect(try client.get("/get/ring").text == "one") }
        #expect(try client.get("/counter").text == "1")
        #expect(try client.get("/counter").text == "2")
        for index in hosts.indices {
            #expect(hosts[index].isRunning)
        }
    }
}
