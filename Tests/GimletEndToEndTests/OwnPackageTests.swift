import Foundation
import GimletHost
import GimletSQLite
import Testing

/// A new user's own package, exactly as the README gives it: its commands
/// (the clone made from this checkout's git repository, its commit tagged
/// with ``Host/version`` as a release would be), its Package.swift
/// depending on that clone by URL and version, the Quick
/// Start's three files (routes, main.swift, tests), built in a temporary
/// directory; its own `swift test`; then the binary deployed with
/// deploy/README's spawn-fcgi recipe behind nginx, with only a secret file
/// and `GIMLET_DATA_DIR` set, its sessions in SQLite there.
@Suite(.serialized) struct OwnPackage {
    /// The block after `<!-- NAME -->` in the README.
    static func readmeBlock(_ name: String, language: String = "swift") throws -> String {
        try markdownBlock(after: "<!-- \(name) -->", language: language, in: "README.md")
    }

    /// Where a Quick Start block says it goes: its first line, `// PATH`.
    static func place(_ block: String, in package: String) throws {
        guard block.hasPrefix("// "), let path = block.split(separator: "\n").first?.dropFirst(3) else {
            throw SetupError("a Quick Start block does not start with its path: \(block.prefix(80))")
        }
        try block.write(toFile: package + "/" + path, atomically: true, encoding: .utf8)
    }

    @Test func theReadmesPackageBuildsTestsAndDeploysBehindNginx() throws {
        let directory = try TemporaryDirectory("gimlet-own-package")
        // The README's commands, the clone made from this checkout (its
        // last commit: what CI's fresh clone has). Its tags are replaced by
        // one, the version this commit declares, so `from:` resolves to
        // this commit whether or not a tag travelled with the clone.
        let commands = try Self.readmeBlock("own-app-commands", language: "sh")
        let clone = try #require(commands.split(separator: "\n").first { $0.hasPrefix("git clone ") })
        let script = commands.replacingOccurrences(of: String(clone), with: """
            git clone -q '\(Repository.root.path)' gimlet
            git -C gimlet tag -l | xargs -r git -C gimlet tag -d >/dev/null
            git -C gimlet tag '\(Host.version)'
            """)
        #expect(try runDaemonizer("/bin/bash", ["-euc", "cd '\(directory.path)'\n" + script], outputPath: directory.file("commands.log")) == 0,
                "\((try? String(contentsOfFile: directory.file("commands.log"), encoding: .utf8)) ?? "")")
        let package = directory.file("myapp")
        // The manifest as given, plus a second target for the README's first
        // app (async handler and middleware), built in the same build.
        let readmeManifest = try Self.readmeBlock("package-manifest")
        #expect(readmeManifest.contains(".package(url: \"<Gimlet's git URL>\", from: \"\(Host.version)\")"),
                "the README depends on this version, by URL: \(readmeManifest)")
        let manifest = readmeManifest.replacingOccurrences(of: "<Gimlet's git URL>", with: "file://" + directory.file("gimlet"))
        let withAnApp = manifest.replacingOccurrences(of: "\n    ]\n)", with: """

                    .executableTarget(name: "anapp", dependencies: [
                        .product(name: "GimletHost", package: "gimlet"),
                        .product(name: "GimletHTTP", package: "gimlet"),
                    ]),
                ]
            )
            """)
        #expect(withAnApp != manifest, "the README's manifest no longer ends its targets with \"    ]\\n)\"")
        try withAnApp.write(toFile: package + "/Package.swift", atomically: true, encoding: .utf8)
        for block in ["quick-start", "quick-start-main", "testing"] {
            try Self.place(try Self.readmeBlock(block), in: package)
        }
        try FileManager.default.createDirectory(atPath: package + "/Sources/anapp", withIntermediateDirectories: true)
        try Self.readmeBlock("an-app").write(toFile: package + "/Sources/anapp/main.swift", atomically: true, encoding: .utf8)

        let swift = try Tool.path("swift", package: "the Swift toolchain (not a Debian package: /opt/swift)")
        let build = try ManagedProcess("swift build", executable: swift, arguments: ["build"],
                                       outputPath: directory.file("build.log"), directory: package)
        let status = build.waitForExit(seconds: 900)
        #expect(status == 0, "swift build of the README's package: \(build.output.suffix(3000))")
        guard status == 0 else { return }
        let binary = package + "/.build/debug/myapp"
        // The package's own tests, the README's testing example.
        let test = try ManagedProcess("swift test", executable: swift, arguments: ["test"],
                                      outputPath: directory.file("test.log"), directory: package)
        #expect(test.waitForExit(seconds: 900) == 0, "swift test of the README's package: \(test.output.suffix(3000))")
        #expect(test.output.contains("todosNeedTheSessionsCSRFToken") && test.output.contains("theCartKeepsWhatWasAdded"),
                "\(test.output.suffix(2000))")

        // deploy/README's try-out: the app behind a private nginx, from this checkout.
        let tryOut = try markdownBlock(after: "<!-- try-out -->", language: "sh", in: "deploy/README.md")
        #expect(tryOut.trimmingCharacters(in: .whitespacesAndNewlines) == "scripts/run-example ../myapp/.build/debug/myapp")
        let tryDirectory = try TemporaryDirectory("gimlet-try-out")
        let port = try freeLoopbackPort()
        let run = try RunCommand.startRunExample(binary, port: port, directory: tryDirectory)
        var tryClient = HTTPClient(baseURL: "http://127.0.0.1:\(port)", scratch: tryDirectory)
        tryClient.cookieJar = tryDirectory.file("jar")
        let probe = tryClient
        #expect(waitUntil(seconds: 60) { (try? probe.get("/login/Sam").text) == "hello Sam" }, "\(run.output)")
        #expect(try tryClient.get("/cart/add/rope").text == "cart: rope")
        #expect(waitUntil(seconds: 30) { run.output.contains("serving myapp on http://127.0.0.1:\(port)/") }, "\(run.output)")
        RunCommand.stop(run, directory: tryDirectory, app: "myapp")

        // Without a secret: one line that says how to fix it, no crash.
        let bare = try ManagedProcess("myapp", executable: binary, arguments: ["--fastcgi", "127.0.0.1:1"],
                                      outputPath: directory.file("bare.log"), environment: ["PATH": "/usr/bin:/bin"])
        #expect(bare.waitForExit(seconds: 30) == 1)
        #expect(bare.output.hasPrefix("error: ") && bare.output.contains("GIMLET_SECRET"), "\(bare.output)")
        #expect(bare.output.split(separator: "\n").count == 1, "one line, no backtrace: \(bare.output)")

        // Deployed as deploy/README says: the common recipe installs the
        // binary and a secret file, spawn-fcgi starts four processes with
        // GIMLET_SECRET_FILE and GIMLET_DATA_DIR, nginx in front.
        let machine = try DeployReadmeRecipes.Machine(app: binary)
        let pids = try machine.runSpawnFCGIRecipes()
        defer { for pid in pids { kill(pid, SIGTERM) } }
        let (nginx, client) = try machine.serve(probe: "/nothing-here", answer: 404)
        defer { withExtendedLifetime(nginx) {} }
        #expect(try client.get("/login/Frodo").text == "hello Frodo")
        #expect(try client.get("/cart/add/ring").text == "cart: ring")
        #expect(try client.get("/cart/add/cloak").text == "cart: ring, cloak")
        // The server-side keys are rows in SQLite, in GIMLET_DATA_DIR.
        let store = machine.root.file("lib/sessions.sqlite")
        let keys = try SQLiteDatabase(path: store).read { try $0.rows("SELECT key FROM gimlet_sessions") }
            .compactMap { $0["key"].stringValue }
        #expect(keys.contains("cart") && keys.contains("user"), "\(keys)")
        let log = (try? String(contentsOfFile: machine.root.file("log/app.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("sessions: sqlite://\(store), the embedded default"), "the start says where sessions go: \(log)")

        // The README's first app: an async handler awaiting an actor, async middleware.
        let anApp = try AppBehindNginx("anapp", executable: package + "/.build/debug/anapp",
                                       environment: ["PATH": "/usr/bin:/bin"], directory: directory, probe: "/hello/probe")
        defer { anApp.app.stop() }
        #expect(try anApp.client.get("/hello/Sam").text == "hello, Sam (visit 1)")
        let again = try anApp.client.get("/hello/Sam")
        #expect(again.text == "hello, Sam (visit 2)")
        #expect(again.header("Server-Timing")?.hasPrefix("app;dur=") == true, "the async middleware ran")
        let login = try anApp.client.request("POST", "/login", body: Array("user=Sam".utf8),
                                             headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(login.status == 303 && login.header("Server-Timing") != nil)
    }
}
