import Foundation
import Testing

/// Every start-up failure is one line on standard error that names what is
/// wrong and how to fix it, with a non-zero exit status; `--help` and
/// `--version` speak with the executable's name.
@Suite struct StartupMessages {
    func run(_ binary: String, _ arguments: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin"],
             directory: String? = nil, absolute: Bool = false) throws -> (status: Int32?, output: String) {
        let scratch = try TemporaryDirectory("gimlet-startup")
        let outputPath = scratch.file("out")
        let process = try ManagedProcess("startup", executable: absolute ? binary : try Repository.binary(binary),
                                         arguments: arguments, outputPath: outputPath,
                                         environment: environment, directory: directory)
        let status = process.waitForExit(seconds: 15)
        process.stop()
        return (status, process.output)
    }

    @Test func anUnbindableFastCGISocketIsNamed() throws {
        let result = try run("hello", ["--fastcgi", "unix:/nonexistent-gimlet-dir/app.sock"])
        #expect(result.status == 1)
        #expect(result.output.contains("/nonexistent-gimlet-dir/app.sock"), "names the path: \(result.output)")
        #expect(!result.output.contains("bind/listen"), "not libfcgi's bare perror: \(result.output)")
        #expect(result.output.split(separator: "\n").count == 1, "one line: \(result.output)")
    }

    @Test func anUnknownBackendListsTheAcceptedFormsOnce() throws {
        let result = try run("session-lab", ["--fastcgi", "127.0.0.1:1", "--secret", "0123456789abcdef0123",
                                             "--backend", "mongodb://db/x"])  // postgres:// is known since GimletPostgreSQL
        #expect(result.status != 0)
        #expect(result.output.lowercased().components(separatedBy: "accepted").count - 1 == 1, "one list: \(result.output)")
        for form in ["sqlite:", "redis://", "redis+unix://", "postgresql://", "memory:", "none"] {
            #expect(result.output.contains(form))
        }
        #expect(result.output.split(separator: "\n").count == 1, "one line: \(result.output)")
    }

    /// A backend URL in a start-up error has its credentials hidden, for
    /// every store and every place a password can stand (issue 29: the
    /// whole URL was printed, password included).
    @Test(arguments: [
        "redis://app:s3cretpw@127.0.0.1:1/0?timeout_ms=200",
        "redis://s3cretpw@127.0.0.1:1/0?timeout_ms=200",
        "redis://127.0.0.1:1/0?password=s3cretpw&bogus=1",
        "redis+sentinel://:s3cretpw@127.0.0.1:1/mymaster?sentinel_password=s3cretpw&bogus=1",
        "postgresql://gimlet:s3cretpw@127.0.0.1:1/app?bogus=1",
        "postgresql://gimlet:s3cretpw@127.0.0.1:1/app?connect_timeout=1",
        "postgres:///app?host=/nonexistent&password=s3cretpw&=x",
    ])
    func aBackendURLsPasswordIsNeverPrinted(url: String) throws {
        let result = try run("session-lab", ["--fastcgi", "127.0.0.1:1", "--secret", "0123456789abcdef0123",
                                             "--backend", url])
        #expect(result.status != 0, "\(result.output)")
        #expect(!result.output.contains("s3cretpw"), "the password is hidden: \(result.output)")
        #expect(result.output.contains("redis") || result.output.contains("postgres"), "the store is named: \(result.output)")
    }

    @Test func anUnwritableDataDirectoryIsNamed() throws {
        // /proc cannot hold a directory, whoever runs the test (root included).
        let result = try run("notes", ["--fastcgi", "127.0.0.1:1"],
                             environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": "0123456789abcdef0123"],
                             directory: "/proc")
        #expect(result.status != 0)
        #expect(result.output.contains("/proc/data"), "names the directory: \(result.output)")
        #expect(result.output.contains("GIMLET_DATA_DIR"))
        #expect(result.output.split(separator: "\n").count == 1, "one line: \(result.output)")
    }

    /// A database file the app's user cannot write: refused at start, with
    /// the file and the user named, not found out by the first write (503).
    @Test func aReadOnlySQLiteFileIsRefusedAtStart() throws {
        guard geteuid() == 0 else {
            throw SetupError("this test runs the app as 'nobody' to meet a file it cannot write: run the tests as root (CI does)")
        }
        let directory = try TemporaryDirectory("gimlet-readonly")
        let database = directory.file("sessions.sqlite")
        // Made by root, readable by all; the directory is writable by all (so only the file is the problem).
        let made = try ManagedProcess("sqlite", executable: try Repository.binary("session-lab"),
                                      arguments: ["--fastcgi", "127.0.0.1:1", "--secret", "0123456789abcdef0123", "--backend", "sqlite://" + database],
                                      outputPath: directory.file("made.log"))
        #expect(waitUntil(seconds: 15) { FileManager.default.fileExists(atPath: database + "-wal") }, "\(made.output)")
        // Killed, as a crash would: its -wal and -shm files stay, as they do while another process has the file open.
        made.send(SIGKILL)
        _ = made.waitForExit(seconds: 10)
        for file in [database, database + "-wal", database + "-shm"] { chmod(file, 0o644) }
        chmod(directory.path, 0o777)
        // A socket it can create: without the check, the app would start and serve, and fail the first write with 503.
        let result = try run("/usr/sbin/runuser", ["-u", "nobody", "--", try Repository.binary("session-lab"),
                                                   "--fastcgi", "unix:" + directory.file("app.sock"), "--secret", "0123456789abcdef0123",
                                                   "--backend", "sqlite://" + database], absolute: true)
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains(database) && result.output.contains("read-only") && result.output.contains("nobody"),
                "names the file and the user: \(result.output)")
        #expect(result.output.split(separator: "\n").count == 1, "one line: \(result.output)")
    }

    @Test func helpAndVersionUseTheExecutablesName() throws {
        let help = try run("hello", ["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("USAGE: hello "), "\(help.output.prefix(200))")
        #expect(help.output.contains("--version"))
        let version = try run("hello", ["--version"])
        #expect(version.status == 0)
        #expect(version.output.hasPrefix("Gimlet "), "\(version.output)")
        #expect(try run("notes", ["--version"]).status == 0)
        #expect(try run("session-lab", ["--version"]).status == 0)
    }
}
