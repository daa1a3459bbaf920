import Foundation

/// A real nginx, configured from `deploy/nginx/gimlet.conf` with the test's
/// port and socket, in its own directory, stopped by PID.
final class Nginx: @unchecked Sendable {
    // @unchecked: immutable after init; ManagedProcess is itself safe to share.
    let port: Int
    let directory: TemporaryDirectory
    let process: ManagedProcess

    /// The deploy config with its port and socket replaced by the test's.
    static func serverBlock(port: Int, socket: String, config: String = "gimlet.conf", files: String? = nil) throws -> String {
        let template = try String(contentsOf: Repository.root.appendingPathComponent("deploy/nginx/" + config), encoding: .utf8)
        let placeholders = ["listen 8080;", "unix:/run/gimlet/app.sock"]
        for placeholder in placeholders where !template.contains(placeholder) {
            throw SetupError("deploy/nginx/\(config) no longer contains \(placeholder); update the test template")
        }
        return template
            .replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(port);")
            .replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "unix:" + socket)
            .replacingOccurrences(of: accessLogPlaceholder, with: "access-log.txt")
            .replacingOccurrences(of: filesPlaceholder, with: files ?? filesPlaceholder)
            .replacingOccurrences(of: staticRootPlaceholder, with: staticRoot)
    }

    /// Where the recipes keep the app's protected downloads (their `internal` location).
    static let filesPlaceholder = "/opt/gimlet/files"

    /// Where the recipes keep the app's static files (`/static/` is `static/` under it).
    static let staticRootPlaceholder = "/opt/gimlet"
    /// What tests serve there: the notes app's own (`examples/notes/static`).
    static var staticRoot: String { Repository.root.appendingPathComponent("examples/notes").path }

    /// Where the recipes keep nginx's access log; tests keep it in nginx's directory.
    static let accessLogPlaceholder = "/var/log/nginx/gimlet-access.log"

    /// The main nginx.conf around a server block, everything under `directory`.
    static func mainConfig(directory: String, serverBlockFile: String, user: String = "nobody nogroup") -> String {
        let user = geteuid() == 0 ? "user \(user);\n" : ""
        return """
            daemon off;
            \(user)worker_processes 1;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log warn;
            events { worker_connections 4096; }
            http {
                include /etc/nginx/mime.types;
                access_log off;
                client_body_temp_path \(directory)/client_body;
                fastcgi_temp_path \(directory)/fastcgi;
                proxy_temp_path \(directory)/proxy;
                scgi_temp_path \(directory)/scgi;
                uwsgi_temp_path \(directory)/uwsgi;
                include \(serverBlockFile);
            }

            """
    }

    /// nginx from `deploy/nginx/<config>` in front of `socket`; `customize`, when
    /// given, does the template's substitutions itself (it gets the file and the port).
    /// `user` is the user and group nginx's worker runs as when the tests run as root.
    /// `files` is the directory the recipe's `/protected/` location serves (its `/opt/gimlet/files`).
    init(socket: String, config: String = "gimlet.conf", user: String = "nobody nogroup", files: String? = nil,
         customize: ((String, Int) -> String)? = nil) throws {
        let nginx = try Tool.nginx()
        directory = try TemporaryDirectory("gimlet-nginx")
        port = try freeLoopbackPort()
        for params in ["fastcgi_params", "scgi_params"] {
            try FileManager.default.copyItem(atPath: "/etc/nginx/" + params, toPath: directory.file(params))
        }
        let serverBlock: String
        if let customize {
            let template = try String(contentsOf: Repository.root.appendingPathComponent("deploy/nginx/" + config), encoding: .utf8)
            serverBlock = customize(template, port).replacingOccurrences(of: Self.accessLogPlaceholder, with: "access-log.txt")
                .replacingOccurrences(of: Self.filesPlaceholder, with: files ?? Self.filesPlaceholder)
                .replacingOccurrences(of: Self.staticRootPlaceholder, with: Self.staticRoot)
        } else {
            serverBlock = try Self.serverBlock(port: port, socket: socket, config: config, files: files)
        }
        try serverBlock.write(toFile: directory.file("gimlet.conf"), atomically: true, encoding: .utf8)
        try Self.mainConfig(directory: directory.path, serverBlockFile: directory.file("gimlet.conf"), user: user)
            .write(toFile: directory.file("nginx.conf"), atomically: true, encoding: .utf8)
        process = try ManagedProcess(
            "nginx", executable: nginx,
            arguments: ["-p", directory.path, "-c", directory.file("nginx.conf"), "-e", directory.file("error.log")],
            outputPath: directory.file("stderr.log"))
        let port = self.port
        let up = waitUntil(seconds: 10) { canConnect(port: port) }
        guard up else {
            throw SetupError("nginx did not start: \(process.output) \((try? String(contentsOfFile: directory.file("error.log"), encoding: .utf8)) ?? "")")
        }
    }

    deinit { process.stop() }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    var errorLog: String { (try? String(contentsOfFile: directory.file("error.log"), encoding: .utf8)) ?? "" }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// Whether something accepts connections on the unix socket at `path`.
func canConnect(unixPath path: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    } == 0
}

/// An app started on a unix socket behind a fresh nginx, with a client that
/// keeps cookies; ready once `probe` answers 200. Stop `app` when done.
struct AppBehindNginx {
    let app: ManagedProcess
    let nginx: Nginx
    let client: HTTPClient

    init(_ name: String, executable: String, environment: [String: String], directory: TemporaryDirectory,
         probe: String) throws {
        let socket = directory.file(name + ".sock")
        app = try ManagedProcess(name, executable: executable, arguments: ["--fastcgi", "unix:" + socket, "--socket-mode", "666"],
                                 outputPath: directory.file(name + ".log"), environment: environment)
        do {
            nginx = try Nginx(socket: socket)
        } catch {
            app.stop()
            throw error
        }
        var client = HTTPClient(baseURL: nginx.baseURL, scratch: directory)
        client.cookieJar = directory.file(name + ".jar")
        self.client = client
        let ready = client
        guard waitUntil(seconds: 15, { (try? ready.get(probe).status) == 200 }) else {
            app.stop()
            throw SetupError("\(name) did not answer \(probe) through nginx: \(app.output) \(nginx.errorLog)")
        }
    }
}
