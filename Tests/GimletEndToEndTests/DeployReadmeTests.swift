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

        /// A machine the recipes install `app` on (the notes example unless given).
        init(app: String? = nil) throws {
            guard geteuid() == 0 else {
                throw SetupError("the deploy recipes create a system user and drop privileges: run the tests as root (CI does)")
            }
            _ = try Tool.spawnFCGI()
            _ = try Tool.path("runuser", package: "util-linux")
            root = try TemporaryDirectory("gimlet-machine")
            self.app = try app ?? Repository.binary("notes")
            port = try freeLoopbackPort()
            // The notes app's static files where the common recipe installs
            // an app's (the recipes run from this checkout, which has none at its top).
            try FileManager.default.createDirectory(atPath: root.file("opt"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Repository.root.appendingPathComponent("examples/notes/static").path,
                                             toPath: root.file("opt/static"))
            // deploy/ as the recipes copy it, its system paths and port substituted.
            for folder in ["nginx", "apache", "systemd"] {
                let source = Repository.root.appendingPathComponent("deploy/" + folder).path
                try FileManager.default.createDirectory(atPath: root.file("deploy/" + folder), withIntermediateDirectories: true)
                for file in try FileManager.default.contentsOfDirectory(atPath: source) {
                    let text = try String(contentsOfFile: source + "/" + file, encoding: .utf8)
                    try substitute(text).write(toFile: root.file("deploy/\(folder)/\(file)"), atomically: true, encoding: .utf8)
                }
            }
        }

        /// The port that stands in for the recipes' 8080.
        let port: Int

        /// The text with each system path replaced by its stand-in.
        func substitute(_ text: String) -> String {
            var text = text
            // Files the recipes copy come from a substituted copy of deploy/.
            text = text.replacingOccurrences(of: "cp deploy/", with: "cp \(root.path)/deploy/")
            text = text.replacingOccurrences(of: "8080", with: "\(port)")
            text = text.replacingOccurrences(of: "/etc/nginx", with: root.file("nginx"))
            text = text.replacingOccurrences(of: "/etc/apache2", with: root.file("apache2"))
            text = text.replacingOccurrences(of: "&& sudo nginx ", with: "&& sudo nginx -c \(root.file("nginx/nginx.conf")) ")
            text = text.replacingOccurrences(of: "\nsudo nginx ", with: "\nsudo nginx -c \(root.file("nginx/nginx.conf")) ")
            for (system, stand) in [("/opt/gimlet", "opt"), ("/etc/gimlet", "etc"), ("/run/gimlet", "run"),
                                    ("/var/lib/gimlet", "lib"), ("/var/log/gimlet", "log"),
                                    ("/etc/systemd/system", "systemd")] {
                text = text.replacingOccurrences(of: system, with: root.file(stand))
            }
            // The tests run as root, where the recipes' sudo is not needed (nor always installed).
            return text.replacingOccurrences(of: ".build/release/myapp", with: app).replacingOccurrences(of: "sudo ", with: "")
        }

        /// Runs the README's block `name` (substituted) with bash from the
        /// repository root; `systemctl` lines are left to the caller.
        /// Returns the exit status and what it printed. (posix_spawn and
        /// waitpid: Foundation's Process loses track of a script whose
        /// children daemonize.)
        func run(recipe name: String) throws -> (status: Int32, output: String) {
            var script = "set -eu\ncd '\(Repository.root.path)'\nexport APACHE_CONFDIR='\(root.file("apache2"))'\n"
            for line in try Self.recipe(name).split(separator: "\n", omittingEmptySubsequences: false) {
                if line.contains("systemctl ") { continue }
                script += line + "\n"
            }
            try FileManager.default.createDirectory(atPath: root.file("systemd"), withIntermediateDirectories: true)
            let file = root.file("recipe-\(name).sh")
            try substitute(script).write(toFile: file, atomically: true, encoding: .utf8)
            let status = try runDaemonizer("/bin/bash", [file], outputPath: root.file("recipe-\(name).log"))
            return (status, (try? String(contentsOfFile: root.file("recipe-\(name).log"), encoding: .utf8)) ?? "")
        }

        /// The shell block after `<!-- recipe: NAME -->` in deploy/README.md.
        static func recipe(_ name: String) throws -> String {
            try markdownBlock(after: "<!-- recipe: \(name) -->", language: "sh", in: "deploy/README.md")
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
            for entry in values["EnvironmentFile"] ?? [] {
                // A leading "-": the file may be missing.
                let optional = entry.hasPrefix("-"), file = optional ? String(entry.dropFirst()) : entry
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    if optional { continue }
                    throw SetupError("the unit's EnvironmentFile \(file) is missing")
                }
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                    if parts.count == 2 { environment[parts[0]] = parts[1] }
                }
            }
            // LoadCredential=ID:PATH: a copy of PATH only the unit's user reads, in $CREDENTIALS_DIRECTORY (%d).
            let credentials = root.file("credentials")
            for spec in values["LoadCredential"] ?? [] {
                let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
                try #require(parts.count == 2, "LoadCredential=\(spec)")
                try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: parts[1], toPath: credentials + "/" + parts[0])
                chmod(credentials + "/" + parts[0], 0o400)
                if let user { _ = try runTool("/bin/chown", ["-R", user, credentials]) }
                chmod(credentials, 0o500)
                environment["CREDENTIALS_DIRECTORY"] = credentials
            }
            for assignment in values["Environment"] ?? [] {
                let parts = assignment.replacingOccurrences(of: "%d", with: credentials)
                    .split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { environment[parts[0]] = parts[1] }
            }
            let command = try #require(values["ExecStart"]?.first).split(separator: " ").map(String.init)
            let (executable, arguments) = user.map { user in
                ("/usr/sbin/runuser", ["-u", user] + (group.map { ["-g", $0] } ?? []) + ["--"] + command)
            } ?? (command[0], Array(command.dropFirst()))
            return try ManagedProcess(name, executable: executable, arguments: arguments,
                                      outputPath: root.file("\(name).log"), environment: environment)
        }

        /// The common and spawn-fcgi recipes, as written: the PIDs of the
        /// processes spawn-fcgi started (stop them when done).
        func runSpawnFCGIRecipes() throws -> [Int32] {
            let common = try run(recipe: "common")
            #expect(common.status == 0, "\(common.output)")
            let spawn = try run(recipe: "spawn-fcgi")
            #expect(spawn.status == 0, "\(spawn.output)")
            return ((try? String(contentsOfFile: root.file("run/app.pid"), encoding: .utf8)) ?? "")
                .split(whereSeparator: \.isNewline).compactMap { Int32($0) }
        }

        /// Runs a tool to its end (posix_spawn and waitpid: some daemonize).
        func runTool(_ path: String, _ arguments: [String]) throws -> Int32? {
            try runDaemonizer(path, arguments, outputPath: root.file("tool-\((path as NSString).lastPathComponent).log"))
        }

        /// nginx (as www-data) in front of the recipe's socket; the notes app answers through it.
        func serve(probe: String = "/hello/recipe", answer: Int = 200) throws -> (Nginx, HTTPClient) {
            let nginx = try Nginx(socket: root.file("run/app.sock"), user: "www-data www-data")
            var client = HTTPClient(baseURL: nginx.baseURL, scratch: root)
            client.cookieJar = root.file("jar")
            guard waitUntil(seconds: 20, { (try? client.get(probe).status) == answer }) else {
                throw SetupError("nothing answered through nginx: \(nginx.errorLog)")
            }
            return (nginx, client)
        }

        /// The app by hand, as the README's last process recipe says.
        func startByHand() throws -> ManagedProcess {
            try FileManager.default.createDirectory(atPath: root.file("run"), withIntermediateDirectories: true)
            return try ManagedProcess(
                "notes", executable: app, arguments: ["--fastcgi", "unix:" + root.file("run/app.sock"), "--socket-mode", "666"],
                outputPath: root.file("notes.log"),
                environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": SessionLabBehindNginx.secret, "GIMLET_DATA_DIR": root.file("lib")])
        }

        /// A scratch copy of Debian's /etc/nginx with its master running, as on a server.
        func runningNginx() throws -> PIDFileProcess {
            let nginx = try Tool.nginx()
            _ = try runTool("/bin/cp", ["-r", "/etc/nginx", root.file("nginx")])
            try FileManager.default.removeItem(atPath: root.file("nginx/sites-enabled/default"))
            try FileManager.default.createDirectory(atPath: root.file("nginx/log"), withIntermediateDirectories: true)
            let main = try String(contentsOfFile: root.file("nginx/nginx.conf"), encoding: .utf8)
                .replacingOccurrences(of: "/etc/nginx", with: root.file("nginx"))
                .replacingOccurrences(of: "/run/nginx.pid", with: root.file("nginx/nginx.pid"))
                .replacingOccurrences(of: "/var/log/nginx", with: root.file("nginx/log"))
            try main.write(toFile: root.file("nginx/nginx.conf"), atomically: true, encoding: .utf8)
            #expect(try runTool(nginx, ["-c", root.file("nginx/nginx.conf"), "-e", root.file("nginx/log/error.log")]) == 0)
            return try PIDFileProcess(pidFile: root.file("nginx/nginx.pid"))
        }

        /// A scratch copy of Debian's /etc/apache2 (its envvars, ports and
        /// default site made the test's), with Apache running.
        func runningApache() throws -> PIDFileProcess {
            _ = try Tool.path("apache2", package: "apache2")
            let confdir = root.file("apache2")
            _ = try runTool("/bin/cp", ["-r", "/etc/apache2", confdir])
            try FileManager.default.removeItem(atPath: confdir + "/sites-enabled/000-default.conf")
            try "".write(toFile: confdir + "/ports.conf", atomically: true, encoding: .utf8)
            for folder in ["run", "lock", "log"] {
                try FileManager.default.createDirectory(atPath: confdir + "/" + folder, withIntermediateDirectories: true)
            }
            try """
                export APACHE_RUN_USER=www-data
                export APACHE_RUN_GROUP=www-data
                export APACHE_PID_FILE=\(confdir)/run/apache2.pid
                export APACHE_RUN_DIR=\(confdir)/run
                export APACHE_LOCK_DIR=\(confdir)/lock
                export APACHE_LOG_DIR=\(confdir)/log
                export LANG=C

                """.write(toFile: confdir + "/envvars", atomically: true, encoding: .utf8)
            // Nothing listens until the recipe adds its Listen line; a placeholder port keeps Apache up meanwhile.
            try "Listen 127.0.0.1:\(try freeLoopbackPort())\n".write(toFile: confdir + "/ports.conf", atomically: true, encoding: .utf8)
            let started = try runTool("/usr/bin/env", ["APACHE_CONFDIR=" + confdir, "/usr/sbin/apache2ctl", "start"])
            #expect(started == 0, "\((try? String(contentsOfFile: root.file("tool-env.log"), encoding: .utf8)) ?? "")")
            return try PIDFileProcess(pidFile: confdir + "/run/apache2.pid")
        }
    }

    /// Makes an account in the notes app and signs in: the account in the
    /// app's own SQLite file and the bound session in the session store,
    /// both in the recipe's data directory.
    func signIn(_ client: HTTPClient, machine: Machine) throws {
        let signUp = try NotesAccounts.enter(client, name: "Ops", password: "ops password")
        #expect(signUp.status == 303, "\(signUp.text)")
        #expect(try client.get("/").text.contains("Welcome, Ops."))
        #expect(FileManager.default.fileExists(atPath: machine.root.file("lib/sessions.sqlite")))
        #expect(FileManager.default.fileExists(atPath: machine.root.file("lib/notes.sqlite")))
    }

    /// A web server recipe, on a machine where that server already runs and
    /// the app was started by hand: after the recipe, the app answers on 8080.
    @Test(arguments: ["nginx", "apache"])
    func webServerRecipeRunsAsWritten(server: String) throws {
        let machine = try Machine()
        let app = try machine.startByHand()
        defer { app.stop() }
        let running = try server == "nginx" ? machine.runningNginx() : machine.runningApache()
        defer { running.stop() }
        let recipe = try machine.run(recipe: server)
        #expect(recipe.status == 0, "\(recipe.output)")
        var client = HTTPClient(baseURL: "http://127.0.0.1:\(machine.port)", scratch: machine.root)
        client.cookieJar = machine.root.file("jar")
        let probe = client
        #expect(waitUntil(seconds: 10) { (try? probe.get("/hello/recipe").status) == 200 }, "\(recipe.output)")
        try signIn(client, machine: machine)
        try Self.checkStaticFiles(client)
    }

    /// The web server serves /static/ itself, with caching headers, and a
    /// conditional request gets 304.
    static func checkStaticFiles(_ client: HTTPClient) throws {
        let stylesheet = try client.get("/static/notes.css")
        let file = try String(contentsOf: Repository.root.appendingPathComponent("examples/notes/static/notes.css"), encoding: .utf8)
        #expect(stylesheet.status == 200 && stylesheet.text == file, "\(stylesheet.status) \(stylesheet.text.prefix(200))")
        #expect(stylesheet.header("Content-Type")?.hasPrefix("text/css") == true, "\(stylesheet.headers)")
        #expect(stylesheet.header("Cache-Control")?.contains("max-age=3600") == true, "\(stylesheet.headers)")
        #expect(stylesheet.header("X-Request-Id") == nil, "no request reached the app: \(stylesheet.headers)")
        if let etag = stylesheet.header("ETag") {
            #expect(try client.get("/static/notes.css", headers: ["If-None-Match": etag]).status == 304)
        } else {
            Issue.record("no ETag on a static file: \(stylesheet.headers)")
        }
        #expect(try client.get("/static/missing.css").status == 404)
    }

    @Test func spawnFCGIRecipeRunsAsWritten() throws {
        let machine = try Machine()
        let pids = try machine.runSpawnFCGIRecipes()
        defer { for pid in pids { kill(pid, SIGTERM) } }
        #expect(pids.count == 4, "-F 4")
        let (nginx, client) = try machine.serve()
        defer { withExtendedLifetime(nginx) {} }
        try signIn(client, machine: machine)
        let log = (try? String(contentsOfFile: machine.root.file("log/app.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("serving FastCGI"), "the children's log reaches GIMLET_LOG_FILE: \(log)")
    }

    /// spawn-fcgi discards its children's standard error: an app that cannot
    /// start (here: an empty secret file) must still say why, in GIMLET_LOG_FILE.
    @Test func aChildThatCannotStartSaysWhyInTheLogFile() throws {
        let machine = try Machine()
        #expect(try machine.run(recipe: "common").status == 0)
        try "".write(toFile: machine.root.file("etc/secret"), atomically: false, encoding: .utf8)
        let spawn = try machine.run(recipe: "spawn-fcgi")
        // spawn-fcgi says "child exited with: 1" only if the child dies within
        // its short wait (a slower start, as under a sanitizer, passes it):
        // the log file is where the reason must be, either way.
        func log() -> String { (try? String(contentsOfFile: machine.root.file("log/app.log"), encoding: .utf8)) ?? "" }
        #expect(waitUntil(seconds: 15) { log().contains("is empty") && log().contains("GIMLET_SECRET_FILE") },
                "the reason is in the log file: \(log()); spawn-fcgi said: \(spawn.output)")
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
