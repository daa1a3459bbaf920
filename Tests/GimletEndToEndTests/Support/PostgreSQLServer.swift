import Foundation

/// A real PostgreSQL server (Debian's `postgresql` package) on a free
/// loopback port and a unix socket, in its own directory, stopped by PID.
///
/// PostgreSQL refuses to run as root: when the tests do, `initdb` and
/// `postgres` run as the package's `postgres` user (through `setpriv`,
/// which execs, so the PID is the server's own). The cluster trusts local
/// connections, has no fsync (a test's data need not survive a power cut),
/// and one database, `gimlet`, owned by the user `gimlet`.
final class PostgreSQLServer: @unchecked Sendable {
    // @unchecked: immutable after init apart from the process, which is itself safe to share.
    let port: Int
    let directory: TemporaryDirectory
    private(set) var process: ManagedProcess
    private let runAs: [String]
    private let binaries: String

    /// The database over TCP.
    var url: String { "postgresql://gimlet@127.0.0.1:\(port)/gimlet" }
    /// The database over the unix socket.
    var socketURL: String { "postgresql:///gimlet?host=\(directory.path)&port=\(port)&user=gimlet" }

    init() throws {
        binaries = try Self.binaries()
        directory = try TemporaryDirectory("gimlet-postgresql")
        port = try freeLoopbackPort()
        if geteuid() == 0 {
            guard let user = getpwnam("postgres") else {
                throw SetupError("no postgres user: apt-get install postgresql (make test installs it)")
            }
            guard chown(directory.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw SetupError("cannot give \(directory.path) to the postgres user")
            }
            runAs = [try Tool.path("setpriv", package: "util-linux"), "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        } else {
            runAs = []
        }
        let initialized = try runToCompletion(runAs.first ?? binaries + "/initdb", Array(runAs.dropFirst()) + (runAs.isEmpty ? [] : [binaries + "/initdb"]) + [
            "-D", directory.file("data"), "-U", "gimlet", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C",
        ])
        guard initialized.status == 0 else {
            throw SetupError("initdb failed: \(String(decoding: initialized.output + initialized.errors, as: UTF8.self))")
        }
        process = try Self.start(runAs: runAs, binaries: binaries, port: port, directory: directory)
        let created = try psql("CREATE DATABASE gimlet OWNER gimlet", database: "postgres")
        guard created.contains("CREATE DATABASE") else { throw SetupError("cannot create the database: \(created)") }
        // The server's own count of statements, for the round-trip tests.
        let counting = try psql("CREATE EXTENSION pg_stat_statements")
        guard counting.contains("CREATE EXTENSION") else { throw SetupError("cannot count statements: \(counting)") }
    }

    deinit { stop() }

    /// Where Debian puts the server's programs (not on PATH).
    private static func binaries() throws -> String {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: >) where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/postgres") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        throw SetupError("the PostgreSQL server is not installed: apt-get install postgresql (make test installs it)")
    }

    private static func start(runAs: [String], binaries: String, port: Int, directory: TemporaryDirectory) throws -> ManagedProcess {
        let arguments = [
            "-D", directory.file("data"), "-p", "\(port)", "-k", directory.path, "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            "-c", "shared_preload_libraries=pg_stat_statements",
        ]
        let process = try ManagedProcess(
            "postgres", executable: runAs.first ?? binaries + "/postgres",
            arguments: Array(runAs.dropFirst()) + (runAs.isEmpty ? [] : [binaries + "/postgres"]) + arguments,
            outputPath: directory.file("postgres-\(UUID().uuidString).log"))
        let socket = directory.file(".s.PGSQL.\(port)")
        // Listening is not ready: until recovery ends, connections get "the database system is starting up".
        let ready = try Tool.path("pg_isready", package: "postgresql-client")
        guard waitUntil(seconds: 20, {
            canConnect(port: port) && canConnect(unixPath: socket)
                && (try? runToCompletion(ready, ["-h", "127.0.0.1", "-p", "\(port)", "-U", "gimlet", "-d", "postgres"]))?.status == 0
        }) else {
            throw SetupError("postgres did not start: \(process.output)")
        }
        return process
    }

    /// Stops the server with a fast shutdown (SIGINT: clients are
    /// disconnected, as in a restart), SIGKILL if that takes over 10 s.
    func stop() {
        guard process.isRunning else { return }
        process.send(SIGINT)
        if !waitUntil(seconds: 10, { !process.isRunning }) {
            process.send(SIGKILL)
            _ = waitUntil(seconds: 5) { !process.isRunning }
        }
    }

    /// Starts it again on the same port, with its data.
    func restart() throws { process = try Self.start(runAs: runAs, binaries: binaries, port: port, directory: directory) }

    /// Runs `sql` with psql as `gimlet` in `database`; its output (tuples only, unaligned).
    @discardableResult
    func psql(_ sql: String, database: String = "gimlet") throws -> String {
        let psql = try Tool.path("psql", package: "postgresql-client")
        let result = try runToCompletion(psql, [
            "-h", directory.path, "-p", "\(port)", "-U", "gimlet", "-d", database, "-X", "-A", "-t", "-c", sql,
        ])
        return String(decoding: result.output + result.errors, as: UTF8.self)
    }
}
