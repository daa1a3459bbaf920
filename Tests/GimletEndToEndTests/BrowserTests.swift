import Foundation
import Testing

/// examples/notes walked in headless Chromium (Tests/Browser/notes_walk.py)
/// behind each web server recipe, with Debian's stock fastcgi_params and
/// scgi_params, on a non-default port, and once over HTTPS. Screenshots of
/// each step are kept in `.build/artifacts/browser/<setup>/`.
@Suite(.serialized) struct RealBrowser {
    enum Setup: String, CaseIterable, CustomTestStringConvertible {
        case nginxFastCGI = "nginx-fastcgi"
        case nginxSCGI = "nginx-scgi"
        case apacheFastCGI = "apache-fastcgi"
        case nginxHTTPS = "nginx-https"
        var testDescription: String { rawValue }
    }

    /// The walk's interpreter: Debian's python3, which python3-selenium serves.
    static func python() throws -> String {
        _ = try Tool.path("chromium", package: "chromium")
        _ = try Tool.path("chromedriver", package: "chromium-driver")
        guard FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/selenium") else {
            throw SetupError("selenium is not installed: apt-get install python3-selenium (make test installs it)")
        }
        return "/usr/bin/python3"
    }

    /// Over HTTPS the app names its cookies as the TLS recipe recommends:
    /// `__Host-` names, which a browser keeps only with `Secure`, `Path=/`
    /// and no `Domain`, so `cookie_secure=always` must be in force.
    static let hostOnlyCookies = [
        "GIMLET_COOKIE_SECURE": "always", "GIMLET_COOKIE_NAME_PERMANENT": "__Host-gimlet-p",
        "GIMLET_COOKIE_NAME_SESSION": "__Host-gimlet-n",
    ]

    @Test(arguments: Setup.allCases)
    func notesInChromium(setup: Setup) throws {
        let python = try Self.python()
        let directory = try TemporaryDirectory("gimlet-browser")
        let socket = directory.file("notes.sock")
        // Attachments where the web server sends them from (the recipes' /opt/gimlet/files).
        let files = directory.file("files")
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        let offload = setup == .apacheFastCGI ? "apache" : "nginx:/protected/"
        let app = try ManagedProcess(
            "notes", executable: try Repository.binary("notes"),
            arguments: [setup == .nginxSCGI ? "--scgi" : "--fastcgi", "unix:" + socket, "--socket-mode", "666"],
            outputPath: directory.file("notes.log"),
            environment: ProcessInfo.processInfo.environment.merging([
                "GIMLET_SECRET": SessionLabBehindNginx.secret, "GIMLET_DATA_DIR": directory.file("data"),
                "NOTES_FILES": files, "GIMLET_FILE_OFFLOAD": offload,
            ]) { $1 }.merging(setup == .nginxHTTPS ? Self.hostOnlyCookies : [:]) { $1 })
        defer { app.stop() }

        let baseURL: String
        let server: AnyObject
        let serverLog: () -> String
        switch setup {
        case .nginxFastCGI, .nginxSCGI:
            let nginx = try Nginx(socket: socket, config: setup == .nginxSCGI ? "gimlet-scgi.conf" : "gimlet.conf", files: files)
            (baseURL, server, serverLog) = (nginx.baseURL, nginx, { nginx.errorLog })
        case .apacheFastCGI:
            let apache = try Apache(socket: socket, config: "gimlet-fcgi.conf") {
                $0.replacingOccurrences(of: Nginx.filesPlaceholder, with: files)
            }
            (baseURL, server, serverLog) = (apache.baseURL, apache, { apache.errorLog })
        case .nginxHTTPS:
            try makeCertificate(in: directory)
            let nginx = try Nginx(socket: socket, config: "gimlet-tls.conf", files: files) { template, port in
                template
                    .replacingOccurrences(of: "listen 8443 ssl;", with: "listen 127.0.0.1:\(port) ssl;")
                    .replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(try! freeLoopbackPort());")
                    .replacingOccurrences(of: "/etc/ssl/gimlet/", with: directory.path + "/")
                    .replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "unix:" + socket)
            }
            (baseURL, server, serverLog) = ("https://127.0.0.1:\(nginx.port)", nginx, { nginx.errorLog })
        }
        defer { withExtendedLifetime(server) {} }
        let probe = HTTPClient(baseURL: baseURL, scratch: directory, insecure: true)
        guard waitUntil(seconds: 15, { (try? probe.get("/hello/probe").status) == 200 }) else {
            throw SetupError("notes did not answer through \(setup): \(app.output) \(serverLog())")
        }
        // The web server serves the stylesheet itself, cached; over TLS the
        // location keeps the server's HSTS header (nginx's add_header is not
        // inherited by a location with one of its own: the recipe has none there).
        let stylesheet = try probe.get("/static/notes.css")
        #expect(stylesheet.status == 200 && stylesheet.header("Cache-Control")?.contains("max-age=3600") == true,
                "\(setup): \(stylesheet.status) \(stylesheet.headers)")
        if setup == .nginxHTTPS {
            #expect(stylesheet.header("Strict-Transport-Security") == "max-age=31536000", "\(stylesheet.headers)")
        }

        let artifacts = Repository.root.appendingPathComponent(".build/artifacts/browser/" + setup.rawValue).path
        try? FileManager.default.removeItem(atPath: artifacts)
        let walk = try ManagedProcess(
            "notes_walk.py", executable: python,
            arguments: [Repository.root.appendingPathComponent("Tests/Browser/notes_walk.py").path,
                        "--base", baseURL, "--artifacts", artifacts]
                + (setup == .nginxHTTPS ? ["--insecure", "--cookie-prefix", "__Host-"] : []),
            outputPath: directory.file("walk.log"),
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path])
        defer { walk.stop() }
        let status = walk.waitForExit(seconds: 240)
        #expect(status == 0, "\(walk.output)\napp: \(app.output.suffix(1500))\nserver: \(serverLog().suffix(800))")
        #expect(walk.output.contains(" 0 failed"), "\(walk.output)")
        #expect(app.isRunning)
    }

    /// Sign out everywhere else in two Chromium profiles on session-lab
    /// behind nginx (Tests/Browser/sign_out_walk.py), with each revocation
    /// check: the revoked browser's next page finds its session gone, its
    /// client-side key included, and the browser drops its cookies.
    @Test(arguments: ["every-request", "next-server-access"])
    func signingOutEverywhereElseInTwoChromiums(check: String) throws {
        let python = try Self.python()
        let stack = try SessionLabBehindNginx.Stack(environment: ["GIMLET_REVOCATION_CHECK": check])
        let artifacts = Repository.root.appendingPathComponent(".build/artifacts/browser/sign-out-" + check).path
        try? FileManager.default.removeItem(atPath: artifacts)
        let walk = try ManagedProcess(
            "sign_out_walk.py", executable: python,
            arguments: [Repository.root.appendingPathComponent("Tests/Browser/sign_out_walk.py").path,
                        "--base", stack.nginx.baseURL, "--artifacts", artifacts, "--check", check],
            outputPath: stack.directory.file("walk.log"),
            environment: ["PATH": "/usr/bin:/bin", "HOME": stack.directory.path])
        defer { walk.stop() }
        let status = walk.waitForExit(seconds: 180)
        #expect(status == 0, "\(walk.output)\napp: \(stack.app.output.suffix(1500))")
        #expect(walk.output.contains(" 0 failed"), "\(walk.output)")
    }

    func makeCertificate(in directory: TemporaryDirectory) throws {
        let openssl = try ManagedProcess(
            "openssl", executable: try Tool.path("openssl", package: "openssl"),
            arguments: ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-keyout", directory.file("key.pem"), "-out", directory.file("cert.pem")],
            outputPath: directory.file("openssl.log"))
        guard openssl.waitForExit(seconds: 60) == 0 else { throw SetupError("openssl req failed: \(openssl.output)") }
    }
}
