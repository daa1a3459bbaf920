import Foundation
import Testing

/// Sessions that guard the whole site (issue 31, item 4): the recipes
/// `deploy/nginx/gimlet-authorize.conf` (auth_request) and
/// `deploy/apache/gimlet-authorize.conf` (mod_authnz_fcgi, the FastCGI
/// AUTHORIZER role) protect a static directory and another HTTP app with
/// session-lab's `/-/authorize`, through the real servers.
@Suite(.serialized) struct AccessChecksBehindServers {
    /// Another app, in front of which the recipes put the sign-in: Python's
    /// http.server answering every GET with the user it was told and the path.
    final class OtherApp: @unchecked Sendable {
        // @unchecked: immutable after init.
        let process: ManagedProcess
        let port: Int

        init(directory: TemporaryDirectory) throws {
            let script = """
                import http.server
                class Echo(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        users = self.headers.get_all("X-Gimlet-User") or ["-"]
                        body = ("user=%s path=%s" % (",".join(users), self.path)).encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "text/plain")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                    def log_message(self, *args):
                        pass
                server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
                print(server.server_address[1], flush=True)
                server.serve_forever()
                """
            let python = try Tool.path("python3", package: "python3")
            process = try ManagedProcess("other app", executable: python, arguments: ["-c", script],
                                         outputPath: directory.file("other.log"))
            let process = self.process
            guard waitUntil(seconds: 10, { Int(process.output.trimmingCharacters(in: .whitespacesAndNewlines)) != nil }),
                  let port = Int(process.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw SetupError("the other app did not start: \(process.output)")
            }
            self.port = port
        }

        deinit { process.stop() }
    }

    /// A directory only signed-in users may read, readable by the servers' workers (nobody).
    static func privateDirectory(in directory: TemporaryDirectory) throws -> String {
        let path = directory.file("private")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try "members only\n".write(toFile: path + "/secret.txt", atomically: true, encoding: .utf8)
        for (item, mode) in [(directory.path, 0o755), (path, 0o755), (path + "/secret.txt", 0o644)] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: item)
        }
        return path
    }

    /// What every recipe must do, whichever server asks the check.
    /// `signIn`: how a request that is not signed in is answered.
    func walk(_ client: HTTPClient, signIn: (HTTPResult, String) -> Void) throws {
        signIn(try client.get("/private/secret.txt"), "/private/secret.txt")
        signIn(try client.get("/other/page"), "/other/page")
        #expect(try client.get("/hello").text == "hello", "the app's own routes need no sign-in")

        #expect(try client.get("/login/frodo").text == "ok")
        let file = try client.get("/private/secret.txt")
        #expect(file.status == 200 && file.text == "members only\n")
        let other = try client.get("/other/page?x=1", headers: ["X-Gimlet-User": "mallory"])
        #expect(other.status == 200)
        #expect(other.text == "user=frodo path=/page?x=1", "the server sets the user, never the client")
        // Any method is checked (nginx's subrequest carries the client's): the
        // other app itself answers this POST (Python's server: 501, it has no do_POST).
        #expect(try client.request("POST", "/other/form", body: Array("a=1".utf8)).status == 501)

        #expect(try client.get("/invalidate").status == 200)
        signIn(try client.get("/private/secret.txt"), "/private/secret.txt")
        signIn(try client.get("/other/page", headers: ["X-Gimlet-User": "frodo"]), "/other/page")
    }

    @Test func nginxAuthRequestGuardsAStaticDirectoryAndAnotherApp() throws {
        let directory = try TemporaryDirectory("gimlet-authorize-nginx")
        let privateFiles = try Self.privateDirectory(in: directory)
        let other = try OtherApp(directory: directory)
        let socket = directory.file("app.sock")
        let app = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "unix:" + socket, "--socket-mode", "666", "--threads", "4",
                        "--secret", SessionLabBehindNginx.secret],
            outputPath: directory.file("app.log"),
            environment: ProcessInfo.processInfo.environment.merging(["GIMLET_DATA_DIR": directory.file("data")]) { $1 })
        defer { app.stop() }
        let nginx = try Nginx(socket: socket, config: "gimlet-authorize.conf") { template, port in
            template.replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(port);")
                .replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "unix:" + socket)
                .replacingOccurrences(of: "/opt/gimlet/private/", with: privateFiles + "/")
                .replacingOccurrences(of: "http://127.0.0.1:9100/", with: "http://127.0.0.1:\(other.port)/")
        }
        var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        client.cookieJar = directory.file("jar")
        let probe = client
        guard waitUntil(seconds: 10, { (try? probe.get("/hello").status) == 200 }) else {
            throw SetupError("session-lab did not answer through nginx: \(app.output) \(nginx.errorLog)")
        }
        #expect(try client.get("/-/authorize").status == 404, "the check is nginx's alone (internal)")
        try walk(client) { response, path in
            #expect(response.status == 302, "\(path): \(response.status) \(response.text)")
            #expect(response.header("Location")?.hasSuffix("/sign-in?next=" + path) == true, "\(path)")
        }
        #expect(!nginx.errorLog.contains("auth request unexpected status"), "\(nginx.errorLog)")
    }

    @Test func apacheAsksTheCheckInTheFastCGIAuthorizerRole() throws {
        let directory = try TemporaryDirectory("gimlet-authorize-apache")
        let privateFiles = try Self.privateDirectory(in: directory)
        let other = try OtherApp(directory: directory)
        let appPort = try freeLoopbackPort()
        let app = try ManagedProcess(
            "session-lab", executable: try Repository.binary("session-lab"),
            arguments: ["--fastcgi", "127.0.0.1:\(appPort)", "--threads", "4", "--secret", SessionLabBehindNginx.secret],
            outputPath: directory.file("app.log"),
            environment: ProcessInfo.processInfo.environment.merging(["GIMLET_DATA_DIR": directory.file("data")]) { $1 })
        defer { app.stop() }
        let apache = try Apache(socket: "", config: "gimlet-authorize.conf") { template in
            for target in ["fcgi://127.0.0.1:9000/", "http://127.0.0.1:9100/", "/opt/gimlet/private"] where !template.contains(target) {
                Issue.record("deploy/apache/gimlet-authorize.conf no longer names \(target); update the test")
            }
            return template.replacingOccurrences(of: "fcgi://127.0.0.1:9000/", with: "fcgi://127.0.0.1:\(appPort)/")
                .replacingOccurrences(of: "http://127.0.0.1:9100/", with: "http://127.0.0.1:\(other.port)/")
                .replacingOccurrences(of: "/opt/gimlet/private", with: privateFiles)
        }
        defer { apache.process.stop() }
        var client = HTTPClient(baseURL: apache.baseURL, scratch: directory)
        client.cookieJar = directory.file("jar")
        let probe = client
        guard waitUntil(seconds: 10, { (try? probe.get("/hello").status) == 200 }) else {
            throw SetupError("session-lab did not answer through Apache: \(app.output) \(apache.errorLog)")
        }
        try walk(client) { response, path in
            #expect(response.status == 401, "\(path): \(response.status) \(response.text)")
            #expect(response.text == "sign in first", "the check's own answer reaches the client")
            #expect(response.header("Variable-GIMLET_USER") == nil && response.header("X-Gimlet-User") == nil)
        }
        let file = try client.get("/login/sam").status == 200 ? try client.get("/private/secret.txt") : nil
        #expect(file?.header("Variable-GIMLET_USER") == nil, "Apache turns the check's variables into environment")
        #expect(file?.header("X-Gimlet-User") == nil, "the check's answer adds no header of its own to the file's")
        #expect(file?.header("Cache-Control") == nil, "nor keeps browsers from caching it")
        #expect(file?.text == "members only\n")
    }
}
