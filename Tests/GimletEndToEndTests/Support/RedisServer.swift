import Foundation

/// A real redis-server on a free loopback port (and a unix socket), in its
/// own directory, without persistence, stopped by PID.
final class RedisServer: @unchecked Sendable {
    // @unchecked: immutable after init apart from the process, which is itself safe to share.
    let port: Int
    let directory: TemporaryDirectory
    private(set) var process: ManagedProcess

    var url: String { "redis://127.0.0.1:\(port)/0" }
    var socket: String { directory.file("redis.sock") }

    let password: String?

    init(password: String? = nil) throws {
        directory = try TemporaryDirectory("gimlet-redis")
        port = try freeLoopbackPort()
        self.password = password
        process = try Self.start(port: port, directory: directory, password: password)
    }

    deinit { stop() }

    private static func start(port: Int, directory: TemporaryDirectory, password: String?) throws -> ManagedProcess {
        let server = try Tool.path("redis-server", package: "redis-server")
        let process = try ManagedProcess(
            "redis-server", executable: server,
            arguments: ["--port", "\(port)", "--bind", "127.0.0.1", "--unixsocket", directory.file("redis.sock"),
                        "--unixsocketperm", "777", "--dir", directory.path, "--save", "", "--appendonly", "no",
                        "--daemonize", "no", "--protected-mode", "no"] + (password.map { ["--requirepass", $0] } ?? []),
            outputPath: directory.file("redis-\(UUID().uuidString).log"))
        // Redis listens on TCP a moment before its unix socket: wait for both.
        let socket = directory.file("redis.sock")
        guard waitUntil(seconds: 10, { canConnect(port: port) && canConnect(unixPath: socket) }) else {
            throw SetupError("redis-server did not start: \(process.output)")
        }
        return process
    }

    /// Kills the server, as a crash would (SIGKILL): the tests that stop it
    /// mean an outage, and there is no persistence to lose.
    func stop() {
        process.send(SIGKILL)
        _ = waitUntil(seconds: 5) { !process.isRunning }
    }

    /// Starts it again on the same port.
    func restart() throws { process = try Self.start(port: port, directory: directory, password: password) }

    /// Runs redis-cli against this server and returns its output.
    @discardableResult
    func cli(_ arguments: String...) throws -> String {
        let arguments = ["-p", "\(port)"] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + arguments
        return String(decoding: try runToCompletion(try Tool.path("redis-cli", package: "redis-tools"), arguments).output,
                      as: UTF8.self)
    }

    /// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
    func commandCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in try cli("INFO", "commandstats").split(whereSeparator: \.isNewline) {
            // cmdstat_hgetall:calls=2,usec=…
            guard line.hasPrefix("cmdstat_"), let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 8)..<colon])
            guard name != "info", !name.hasPrefix("config"),
                  let calls = line.split(separator: ",").first?.split(separator: "=").last, let number = Int(calls)
            else { continue }
            counts[name] = number
        }
        return counts
    }

    func resetStats() throws { try cli("CONFIG", "RESETSTAT") }
}
