import Foundation
import Testing

/// Redis with Redis Sentinel, all real processes on loopback in one
/// directory: a master, two replicas of it (so one is left to `WAIT` for
/// once the other is promoted), and three sentinels (quorum 2, a master
/// down after 1 s), ready once every sentinel knows both replicas and the
/// two other sentinels. Stopped by PID (SIGKILL; nothing persists).
final class RedisSentinelCluster: @unchecked Sendable {
    // @unchecked: the process lists change only in init and stop, on the test's thread.
    let directory: TemporaryDirectory
    /// The three data nodes' ports: the first starts as master.
    let nodePorts: [Int]
    let sentinelPorts: [Int]
    let masterName = "gimlet"
    private var processes: [Int: ManagedProcess] = [:]

    /// The backend URL, with `options` (`?wait=1`).
    func url(_ options: String = "") -> String {
        "redis+sentinel://" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(masterName)/0" + options
    }

    init() throws {
        directory = try TemporaryDirectory("gimlet-sentinel")
        let server = try Tool.path("redis-server", package: "redis-server")
        nodePorts = [try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()]
        sentinelPorts = [try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()]
        for (index, port) in nodePorts.enumerated() {
            let replicaOf = index == 0 ? [] : ["--replicaof", "127.0.0.1", "\(nodePorts[0])"]
            processes[port] = try ManagedProcess(
                "redis-\(port)", executable: server,
                arguments: ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path, "--save", "", "--appendonly", "no",
                            "--dbfilename", "dump-\(port).rdb", "--daemonize", "no", "--protected-mode", "no"] + replicaOf,
                outputPath: directory.file("redis-\(port).log"))
        }
        guard waitUntil(seconds: 20, { [self] in
            nodePorts.dropFirst().allSatisfy { (try? cli($0, "INFO", "replication"))?.contains("master_link_status:up") == true }
        }) else { throw SetupError("the replicas did not sync: \(processes[nodePorts[1]]?.output ?? "")") }
        for port in sentinelPorts {
            let configuration = directory.file("sentinel-\(port).conf")
            try """
                port \(port)
                bind 127.0.0.1
                protected-mode no
                dir \(directory.path)
                sentinel monitor \(masterName) 127.0.0.1 \(nodePorts[0]) 2
                sentinel down-after-milliseconds \(masterName) 1000
                sentinel failover-timeout \(masterName) 10000
                sentinel parallel-syncs \(masterName) 1

                """.write(toFile: configuration, atomically: true, encoding: .utf8)
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
        let result = try runToCompletion(try Tool.path("redis-cli", package: "redis-tools"), ["-p", "\(port)"] + arguments)
        return String(decoding: result.output, as: UTF8.self)
    }
}
