import Foundation
import Testing

/// deploy/README.md's process recipes, run from the file as written, with
/// temporary directories for the system paths; then requests through nginx
/// (running as www-data, as on Debian) to what they started. Where systemd
/// cannot run a unit here, its ExecStart runs with the unit's User, Group,
/// Environment and EnvironmentFile.
@Suite(.serialized) struct DeployReadmeRecipes {
    /// A scratch stand-in for the machine's system directories.
    final class Machine: @unchecked Sendable {
        // @unchecked: immutable after init.
        let root: TemporaryDirectory
        let app: String

        init() throws {
            guard geteuid() == 0 else {
                throw SetupError("the deploy recipes create a system user and drop privileges: run the tests as root (CI does)")
            }
            _ = try Tool.spawnFCGI()
            _ = try Tool.path("runuser", package: "util-linux")
            root = try TemporaryDirectory("gimlet-machine")
            app = try Repository.binary("notes")
        }

        /// The text with each system path replaced by its stand-in.
        func substitute(_ text: String) -> String {
            var text = text
            for (system, stand) in [("/opt/gimlet", "opt"), ("/etc/gimlet", "etc"), ("/run/gimlet", "run"),
                                    ("/var/lib/gimlet", "lib"), ("/var/log/gimlet", "log"),
                                    ("/etc/systemd/system", "systemd")] {
                text = text.replacingOccurrences(of: system, with: root.file(stand))
            }
            // The tests run as root, where the recipes' sudo is not needed (nor always installed).
            return text.replacingOccurrences(of: ".build/release/app", with: app).replacingOccurrences(of: "sudo ", with: "")
        }

        /// Runs the README's block `name` (substituted) with bash from the
        /// repository root; `systemctl` lines are left to the caller.
        /// Returns the exit status and what it printed. (posix_spawn and
        /// waitpid: Foundation's Process loses track of a script whose
        /// children daemonize.)
        func run(recipe name: String) throws -> (status: Int32, output: String) {
            var script = "set -eu\ncd '\(Repository.root.path)'\n"
            for line in try Self.recipe(name).split(separator: "\n", omittingEmptySubsequences: false) {
                if line.contains("systemctl ") { continue }
                script += line + "\n"
            }
            try FileManager.default.createDirectory(atPath: root.file("systemd"), withIntermediateDirectories: true)
            let file = root.file("recipe-\(name).sh")
            try substitute(script).write(toFile: file, atomically: true, encoding: .utf8)
            let status = try runDaemonizer("/bin/bash", [file], outputPath: root.file("recipe-\(name).log"))
            // A unit the recipe copied names the system paths: substitute them there too.
            let units = (try? FileManager.default.contentsOfDirectory(atPath: root.file("systemd"))) ?? []
            for unit in units where unit.hasSuffix(".service") {
                let path = root.file("systemd/" + unit)
                try substitute(try String(contentsOfFile: path, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
            }
            return (status, (try? String(contentsOfFile: root.file("recipe-\(name).log"), encoding: .utf8)) ?? "")
        }

        /// The shell block after `<!-- recipe: NAME -->` in deploy/README.md.
        static func recipe(_ name: String) throws -> String {
            let readme = try String(contentsOf: Repository.root.appendingPathComponent("deploy/README.md"), encoding: .utf8)
            guard let marker = readme.range(of: "<!-- recipe: \(name) -->"),
                  let open = readme.range(of: "```sh\n", range: marker.upperBound..<readme.endIndex),
                  let close = readme.range(of: "```", range: open.upperBound..<readme.endIndex)
            else { throw SetupError("deploy/README.md has no recipe block \(name)") }
            return String(readme[open.upperBound..<close.lowerBound])
        }

        /// A unit's `Key=` values, the unit substituted.
        func unit(_ name: String) throws -> [String: [String]] {
            let text = try String(contentsOfFile: root.file("systemd/" + name), encoding: .utf8)
            var values: [String: [String]] = [:]
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
            }
            return values
        }

        /// Verifies the copied unit, then runs its ExecStart as systemd would here.
        func start(unit name: String) throws -> ManagedProcess {
            let analyze = try Tool.path("systemd-analyze", package: "systemd")
            let verify = try ManagedProcess("systemd-analyze", executable: analyze, arguments: ["verify", root.file("systemd/" + name)],
                                            outputPath: root.file("verify.log"))
            #expect(verify.waitForExit(seconds: 60) == 0, "\(verify.output)")
            #expect(verify.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no warnings: \(verify.output)")
            let values = try unit(name)
            let user = values["User"]?.first, group = values["Group"]?.first
            // What systemd makes before it starts the service.
            for (key, stand) in [("RuntimeDirectory", "run"), ("StateDirectory", "lib")] where values[key] != nil {
                let path = root.file(stand)
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                let mode = values[key + "Mode"]?.first.flatMap { Int($0, radix: 8) } ?? 0o755
                chmod(path, mode_t(mode))
                if let user { _ = try runTool("/bin/chown", ["\(user):\(group ?? user)", path]) }
            }
            var environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            for file in values["EnvironmentFile"] ?? [] {
                for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                    let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                    if parts.count == 2 { environment[parts[0]] = parts[1] }
                }
            }
            for assignment in values["Environment"] ?? [] {
                let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { environment[parts[0]] = parts[1] }
            }
            let command = try #require(values["ExecStart"]?.first).split(separator: " ").map(String.init)
            let (executable, arguments) = user.map { user in
                ("/usr/sbin/runuser", ["-u", user] + (group.map { ["-g", $0] } ?? []) + ["--"] + command)
            } ?? (command[0], Array(command.dropFirst()))
            return try ManagedProcess(name, executable: executable, arguments: arguments,
                                      outputPath: root.file("\(name).log"), environment: environment)
        }

        func runTool(_ path: String, _ arguments: [String]) throws -> Int32? {
            let process = try ManagedProcess(path, executable: path, arguments: arguments, outputPath: root.file("tool.log"))
            return process.waitForExit(seconds: 30)
        }

        /// nginx (as www-data) in front of the recipe's socket; the notes app answers through it.
        func serve() throws -> (Nginx, HTTPClient) {
            let nginx = try Nginx(socket: root.file("run/app.sock"), user: "www-data www-data")
            var client = HTTPClient(baseURL: nginx.baseURL, scratch: root)
            client.cookieJar = root.file("jar")
            guard waitUntil(seconds: 20, { (try? client.get("/hello/recipe").status) == 200 }) else {
                throw SetupError("nothing answered through nginx: \(nginx.errorLog)")
            }
            return (nginx, client)
        }
    }

    /// Signs in through the notes app: a server-side write in the SQLite file of the recipe's data directory.
    func signIn(_ client: HTTPClient, machine: Machine) throws {
        let page = try client.get("/")
        let token = try #require(page.text.components(separatedBy: "\"").first { $0.count == 40 && $0.allSatisfy(\.isHexDigit) })
        let login = try client.request("POST", "/login", body: Array("csrf_token=\(token)&name=Ops".utf8),
                                       headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(login.status == 303, "\(login.text)")
        #expect(try client.get("/").text.contains("Welcome, Ops."))
        #expect(FileManager.default.fileExists(atPath: machine.root.file("lib/sessions.sqlite")))
    }

    @Test func spawnFCGIRecipeRunsAsWritten() throws {
        let machine = try Machine()
        let common = try machine.run(recipe: "common")
        #expect(common.status == 0, "\(common.output)")
        let spawn = try machine.run(recipe: "spawn-fcgi")
        #expect(spawn.status == 0, "\(spawn.output)")
        let pids = ((try? String(contentsOfFile: machine.root.file("run/app.pid"), encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        defer { for pid in pids { kill(pid, SIGTERM) } }
        #expect(pids.count == 4, "-F 4: \(spawn.output)")
        let (nginx, client) = try machine.serve()
        defer { withExtendedLifetime(nginx) {} }
        try signIn(client, machine: machine)
        let log = (try? String(contentsOfFile: machine.root.file("log/app.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("serving FastCGI"), "the children's log reaches GIMLET_LOG_FILE: \(log)")
    }

    /// spawn-fcgi discards its children's standard error: an app that cannot
    /// start (here: no secret) must still say why, in GIMLET_LOG_FILE.
    @Test func aChildThatCannotStartSaysWhyInTheLogFile() throws {
        let machine = try Machine()
        #expect(try machine.run(recipe: "common").status == 0)
        try "GIMLET_NOTHING=1\n".write(toFile: machine.root.file("etc/app.env"), atomically: true, encoding: .utf8)
        let spawn = try machine.run(recipe: "spawn-fcgi")
        #expect(spawn.status != 0, "spawn-fcgi reports the child's exit: \(spawn.output)")
        let log = (try? String(contentsOfFile: machine.root.file("log/app.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("no session secret") && log.contains("GIMLET_SECRET"), "the reason is in the log file: \(log)")
    }

    @Test(arguments: [("systemd-app", "gimlet-app.service"), ("systemd-spawn-fcgi", "gimlet-spawn-fcgi.service")])
    func systemdUnitRunsAsWritten(recipe: String, unit: String) throws {
        let machine = try Machine()
        #expect(try machine.run(recipe: "common").status == 0)
        let copy = try machine.run(recipe: recipe)
        #expect(copy.status == 0, "\(copy.output)")
        let service = try machine.start(unit: unit)
        defer { service.stop() }
        let (nginx, client) = try machine.serve()
        defer { withExtendedLifetime(nginx) {} }
        try signIn(client, machine: machine)
        #expect(service.isRunning, "\(service.output)")
        #expect(!service.output.contains("error"), "\(service.output)")
    }
}
