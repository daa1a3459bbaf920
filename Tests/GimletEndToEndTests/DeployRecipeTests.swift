import Foundation
import Gimlet
import GimletPostgreSQL
import Testing

/// The deploy/ recipes not covered by the app suites: systemd units, the
/// multi-host nginx configuration and the shared PostgreSQL database.
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
        let (hosts, ports) = try Self.twoHosts(backend: redis.url, threads: 2, in: directory)
        defer { hosts.forEach { $0.stop() } }

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

    /// `deploy/postgresql/` as written: the role and database made by
    /// `gimlet-sessions.sql` (run with psql as a superuser, as it says),
    /// the hosts let in by `pg_hba-gimlet.conf` with their password checked
    /// (SCRAM; the hosts' addresses made 127.0.0.1), and two session-lab
    /// hosts on the recipe's URL behind the upstream recipe: the app
    /// creates its table, a session made through one host is read through
    /// the other, and increments through both hosts at once lose nothing.
    @Test func twoHostsShareSessionsInPostgreSQL() throws {
        let server = try PostgreSQLServer()
        let recipe = Repository.root.appendingPathComponent("deploy/postgresql")
        let made = try runToCompletion(try Tool.path("psql", package: "postgresql-client"), [
            "-h", server.directory.path, "-p", "\(server.port)", "-U", "gimlet", "-d", "postgres", "-X",
            "-v", "ON_ERROR_STOP=1", "-v", "password='app-secret'", "-f", recipe.appendingPathComponent("gimlet-sessions.sql").path,
        ])
        #expect(made.status == 0, "\(String(decoding: made.output + made.errors, as: UTF8.self))")
        let lines = try String(contentsOf: recipe.appendingPathComponent("pg_hba-gimlet.conf"), encoding: .utf8)
            .replacingOccurrences(of: "10.0.0.11/32", with: "127.0.0.1/32").replacingOccurrences(of: "10.0.0.12/32", with: "127.0.0.1/32")
        let hba = server.directory.file("data/pg_hba.conf")
        // In place (not atomically): the file stays the server's.
        try (lines + (try String(contentsOfFile: hba, encoding: .utf8))).write(toFile: hba, atomically: false, encoding: .utf8)
        #expect(try server.psql("SELECT pg_reload_conf()").hasPrefix("t"))
        let url = "postgresql://gimlet_app:app-secret@127.0.0.1:\(server.port)/gimlet_sessions"
        let refused = #expect(throws: (any Error).self, "a wrong password is refused") {
            try PostgreSQLSessionBackend(.init(url: url.replacingOccurrences(of: "app-secret", with: "wrong")), clock: SystemClock())
        }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("password authentication failed"), "\(refused.map { "\($0)" } ?? "")")

        let directory = try TemporaryDirectory("gimlet-postgresql-hosts")
        let (hosts, ports) = try Self.twoHosts(backend: url, threads: 4, in: directory)
        defer { hosts.forEach { $0.stop() } }
        let upstream = try UpstreamRecipe(ports: ports, directory: directory)
        let client = upstream.client()
        #expect(try client.get("/set/ring/one?clientside=0").status == 200)
        for _ in 0..<4 { #expect(try client.get("/get/ring").text == "one") }
        #expect(try server.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'gimlet_sessions'", database: "gimlet_sessions")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "gimlet_app")
        let results = try client.parallelGets(count: 40, connections: 8, headers: ["Cookie": client.jarCookieHeader]) { "/counter?n=\($0)" }
        #expect(results.allSatisfy { $0.status == 200 }, "\(Set(results.map(\.status)))")
        #expect(try client.get("/get/counter").text == "40", "no increment lost across the two hosts")
        for host in hosts { #expect(host.isRunning) }
    }

    /// Two session-lab hosts on free loopback ports with `backend`, listening.
    static func twoHosts(backend: String, threads: Int, in directory: TemporaryDirectory) throws -> ([ManagedProcess], [Int]) {
        let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
        var hosts: [ManagedProcess] = []
        do {
            for (index, port) in ports.enumerated() {
                hosts.append(try ManagedProcess(
                    "session-lab", executable: try Repository.binary("session-lab"),
                    arguments: ["--fastcgi", "127.0.0.1:\(port)", "--threads", "\(threads)", "--secret", SessionLabBehindNginx.secret,
                                "--backend", backend],
                    outputPath: directory.file("host\(index).log")))
            }
            for port in ports where !waitUntil(seconds: 10, { canConnect(port: port) }) {
                throw SetupError("a host does not listen on \(port): \(hosts.map(\.output))")
            }
        } catch {
            hosts.forEach { $0.stop() }
            throw error
        }
        return (hosts, ports)
    }
}
