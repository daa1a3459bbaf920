import Foundation
import Testing

/// Redis with Redis Sentinel from the recipe's files
/// (`deploy/redis/gimlet-redis.conf`, `deploy/redis/gimlet-sentinel.conf`),
/// all real processes on loopback in one directory: a master, two replicas
/// of it (so one is left to `WAIT` for once the other is promoted), and
/// three sentinels (quorum 2), ready once every sentinel knows both
/// replicas and the two other sentinels. Substituted: addresses, ports,
/// directories, the password, and the sentinels' `down-after-milliseconds`
/// (1 s, not 5, to keep the tests short). Stopped by PID (SIGKILL).
final class RedisSentinelCluster: @unchecked Sendable {
    // @unchecked: the process lists change only in init and stop, on the test's thread.
    let directory: TemporaryDirectory
    /// The three data nodes' ports: the first starts as master.
    let nodePorts: [Int]
    let sentinelPorts: [Int]
    let masterName = "gimlet"
    /// The data nodes' password (the recipe's `REDIS-PASSWORD`).
    let password = "sentinel-test-password"
    private var processes: [Int: ManagedProcess] = [:]

    /// The backend URL, with `options` (`?wait=1`).
    func url(_ options: String = "") -> String {
        "redis+sentinel://:\(password)@" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(masterName)/0" + options
    }

    init() throws {
        directory = try TemporaryDirectory("gimlet-sentinel")
        let server = try Tool.path("redis-server", package: "redis-server")
        nodePorts = [try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()]
        sentinelPorts = [try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()]
        let recipe = Repository.root.appendingPathComponent("deploy/redis")
        let node = try String(contentsOf: recipe.appendingPathComponent("gimlet-redis.conf"), encoding: .utf8)
        let sentinel = try String(contentsOf: recipe.appendingPathComponent("gimlet-sentinel.conf"), encoding: .utf8)
        for (index, port) in nodePorts.enumerated() {
            let configuration = directory.file("redis-\(port).conf")
            try (try Self.substitute(node, [
                ("port 6379", "port \(port)"), ("bind 10.0.0.5", "bind 127.0.0.1"), ("REDIS-PASSWORD", password),
                ("dir /var/lib/redis", "dir \(directory.path)\ndbfilename dump-\(port).rdb"),
                ("# replicaof 10.0.0.5 6379", index == 0 ? "" : "replicaof 127.0.0.1 \(nodePorts[0])"),
            ])).write(toFile: configuration, atomically: true, encoding: .utf8)
            processes[port] = try ManagedProcess("redis-\(port)", executable: server, arguments: [configuration],
                                                 outputPath: directory.file("redis-\(port).log"))
        }
        guard waitUntil(seconds: 20, { [self] in
            nodePorts.dropFirst().allSatisfy { (try? cli($0, "INFO", "replication"))?.contains("master_link_status:up") == true }
        }) else { throw SetupError("the replicas did not sync: \(processes[nodePorts[1]]?.output ?? "")") }
        for port in sentinelPorts {
            let configuration = directory.file("sentinel-\(port).conf")
            try (try Self.substitute(sentinel, [
                ("port 26379", "port \(port)"), ("bind 10.0.0.21", "bind 127.0.0.1"), ("dir /var/lib/redis", "dir \(directory.path)"),
                ("10.0.0.5 6379", "127.0.0.1 \(nodePorts[0])"), ("REDIS-PASSWORD", password),
                ("down-after-milliseconds \(masterName) 5000", "down-after-milliseconds \(masterName) 1000"),
            ])).write(toFile: configuration, atomically: true, encoding: .utf8)
            processes[port] = try ManagedProcess("sentinel-\(port)", executable: server, arguments: [configuration, "--sentinel"],
                                                 outputPath: directory.file("sentinel-\(port).log"))
        }
        guard waitUntil(seconds: 40, { [self] in
            sentinelPorts.allSatisfy { port in
                let state = (try? cli(port, "SENTINEL", "master", masterName)) ?? ""
                return state.contains("num-slaves\n2\n") && state.contains("num-other-sentinels\n2\n")
            }
        }) else { throw SetupError("the sentinels did not find each other and the replicas: \(try cli(sentinelPorts[0], "SENTINEL", "master", masterName))") }
    }

    /// `template` with each pair's first text replaced by its second; a
    /// text the recipe no longer has is an error (the test would drift from it).
    private static func substitute(_ template: String, _ pairs: [(String, String)]) throws -> String {
        var text = template
        for (old, new) in pairs {
            guard text.contains(old) else { throw SetupError("the recipe no longer has \(String(reflecting: old))") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    deinit { stop() }

    /// The master's port, as the first sentinel says.
    func masterPort() throws -> Int {
        let answer = try cli(sentinelPorts[0], "SENTINEL", "get-master-addr-by-name", masterName).split(separator: "\n")
        guard answer.count == 2, let port = Int(answer[1]) else { throw SetupError("no master: \(answer)") }
        return port
    }

    /// Waits until the sentinels name another master than `old` and it says it is one.
    func waitForNewMaster(replacing old: Int, seconds: Double = 30) throws -> Int {
        var found: Int?
        _ = waitUntil(seconds: seconds) { [self] in
            guard let port = try? masterPort(), port != old,
                  (try? cli(port, "ROLE"))?.hasPrefix("master") == true else { return false }
            found = port
            return true
        }
        guard let found else { throw SetupError("no failover from \(old) within \(seconds) s") }
        return found
    }

    /// How a test makes the master change.
    enum MasterChange: String, CustomTestStringConvertible, Sendable {
        /// `kill -9` of the master: the sentinels notice and promote a replica.
        case kill
        /// `SENTINEL FAILOVER`: the old master stays up until it is demoted.
        case failover
        /// The planned switch: `CLIENT PAUSE WRITE 3000` on the master, then `SENTINEL FAILOVER`.
        case switchover
        var testDescription: String { rawValue }
    }

    /// Makes the master, on `port`, change `how`.
    func change(_ how: MasterChange, master port: Int) throws {
        if how == .kill {
            kill(port)
            return
        }
        if how == .switchover, try !cli(port, "CLIENT", "PAUSE", "3000", "WRITE").hasPrefix("OK") {
            throw SetupError("CLIENT PAUSE refused")
        }
        guard try cli(sentinelPorts[0], "SENTINEL", "FAILOVER", masterName).hasPrefix("OK") else {
            throw SetupError("SENTINEL FAILOVER refused")
        }
    }

    /// Kills the data node on `port` (a crash: SIGKILL).
    func kill(_ port: Int) {
        processes[port]?.send(SIGKILL)
        _ = waitUntil(seconds: 5) { [self] in processes[port]?.isRunning != true }
    }

    func stop() {
        for process in processes.values { process.send(SIGKILL) }
        for process in processes.values { _ = waitUntil(seconds: 5) { !process.isRunning } }
    }

    /// redis-cli against the node or sentinel on `port`; its output.
    @discardableResult
    func cli(_ port: Int, _ arguments: String...) throws -> String {
        let authentication = nodePorts.contains(port) ? ["--no-auth-warning", "-a", password] : []
        let result = try runToCompletion(try Tool.path("redis-cli", package: "redis-tools"), ["-p", "\(port)"] + authentication + arguments)
        return String(decoding: result.output, as: UTF8.self)
    }
}
