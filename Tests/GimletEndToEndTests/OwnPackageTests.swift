import Foundation
import Testing

/// A new user's own package, exactly as the README gives it: its
/// Package.swift (depending on this checkout by path) and the Quick Start as
/// main.swift, built in a temporary directory and served through nginx.
@Suite(.serialized) struct OwnPackage {
    /// The block after `<!-- NAME -->` in the README.
    static func readmeBlock(_ name: String) throws -> String {
        try markdownBlock(after: "<!-- \(name) -->", language: "swift", in: "README.md")
    }

    @Test func theReadmesPackageBuildsAndServesBehindNginx() throws {
        let directory = try TemporaryDirectory("gimlet-own-package")
        // The manifest depends on "../gimlet": a checkout beside the app.
        try FileManager.default.createSymbolicLink(atPath: directory.file("gimlet"), withDestinationPath: Repository.root.path)
        let package = directory.file("myapp")
        try FileManager.default.createDirectory(atPath: package + "/Sources/myapp", withIntermediateDirectories: true)
        // The manifest as given, plus a second target for the README's first
        // app (async handler and middleware), built in the same build.
        let manifest = try Self.readmeBlock("package-manifest")
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
        try Self.readmeBlock("quick-start").write(toFile: package + "/Sources/myapp/main.swift", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: package + "/Sources/anapp", withIntermediateDirectories: true)
        try Self.readmeBlock("an-app").write(toFile: package + "/Sources/anapp/main.swift", atomically: true, encoding: .utf8)

        let swift = try Tool.path("swift", package: "the Swift toolchain (not a Debian package: /opt/swift)")
        let build = try ManagedProcess("swift build", executable: swift, arguments: ["build"],
                                       outputPath: directory.file("build.log"), directory: package)
        let status = build.waitForExit(seconds: 900)
        #expect(status == 0, "swift build of the README's package: \(build.output.suffix(3000))")
        guard status == 0 else { return }
        let binary = package + "/.build/debug/myapp"

        // Without a secret: one line that says how to fix it, no crash.
        let bare = try ManagedProcess("myapp", executable: binary, arguments: ["--fastcgi", "127.0.0.1:1"],
                                      outputPath: directory.file("bare.log"), environment: ["PATH": "/usr/bin:/bin"])
        #expect(bare.waitForExit(seconds: 30) == 1)
        #expect(bare.output.hasPrefix("error: ") && bare.output.contains("GIMLET_SECRET"), "\(bare.output)")
        #expect(bare.output.split(separator: "\n").count == 1, "one line, no backtrace: \(bare.output)")

        let stack = try AppBehindNginx(
            "myapp", executable: binary,
            environment: ["PATH": "/usr/bin:/bin", "GIMLET_SECRET": SessionLabBehindNginx.secret,
                          "GIMLET_BACKEND": "sqlite://" + directory.file("sessions.sqlite")],
            directory: directory, probe: "/login/Frodo")
        defer { stack.app.stop() }
        let client = stack.client
        #expect(try client.get("/login/Frodo").text == "hello Frodo")
        #expect(try client.get("/cart/add/ring").text == "cart: ring")
        #expect(try client.get("/cart/add/cloak").text == "cart: ring, cloak")
        #expect(FileManager.default.fileExists(atPath: directory.file("sessions.sqlite")))

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
