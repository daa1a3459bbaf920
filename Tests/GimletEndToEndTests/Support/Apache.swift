import Foundation

/// A real Apache httpd (`apache2 -X`), configured from a `deploy/apache/`
/// virtual host with the test's port and socket, in its own directory,
/// stopped by PID.
final class Apache: @unchecked Sendable {
    // @unchecked: immutable after init.
    let port: Int
    let directory: TemporaryDirectory
    let process: ManagedProcess

    /// Apache from `deploy/apache/<config>` in front of `socket`; with
    /// `tcpPort`, the recipe's unix socket target becomes that TCP port. An
    /// empty `socket`: the recipe names no unix socket (`edit` sets its targets).
    /// `edit` changes the virtual host further, before the test's own substitutions.
    init(socket: String, config: String, tcpPort: Int? = nil, edit: (String) -> String = { $0 }) throws {
        let apache = try Tool.path("apache2", package: "apache2")
        let xsendfile = "/usr/lib/apache2/modules/mod_xsendfile.so"
        guard FileManager.default.fileExists(atPath: xsendfile) else {
            throw SetupError("\(xsendfile) is missing: install Debian's libapache2-mod-xsendfile (scripts/install-deps)")
        }
        directory = try TemporaryDirectory("gimlet-apache")
        port = try freeLoopbackPort()
        let template = try String(contentsOf: Repository.root.appendingPathComponent("deploy/apache/" + config), encoding: .utf8)
        let placeholders = ["<VirtualHost *:8080>"] + (socket.isEmpty ? [] : ["unix:/run/gimlet/app.sock"])
        for placeholder in placeholders where !template.contains(placeholder) {
            throw SetupError("deploy/apache/\(config) no longer contains \(placeholder); update the test template")
        }
        var vhost = edit(template).replacingOccurrences(of: "<VirtualHost *:8080>", with: "<VirtualHost 127.0.0.1:\(port)>")
        if let tcpPort {
            for scheme in ["fcgi", "scgi"] {
                vhost = vhost.replacingOccurrences(of: "\"unix:/run/gimlet/app.sock|\(scheme)://localhost/\"",
                                                   with: "\"\(scheme)://127.0.0.1:\(tcpPort)/\"")
            }
        } else {
            vhost = vhost.replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "unix:" + socket)
        }
        vhost = vhost.replacingOccurrences(of: Nginx.staticRootPlaceholder, with: Nginx.staticRoot)
        try vhost.write(toFile: directory.file("gimlet.conf"), atomically: true, encoding: .utf8)
        let modules = "/usr/lib/apache2/modules"
        let user = geteuid() == 0 ? "User nobody\nGroup nogroup\n" : ""
        let main = """
            ServerRoot "\(directory.path)"
            DefaultRuntimeDir "\(directory.path)"
            PidFile "\(directory.file("httpd.pid"))"
            ErrorLog "\(directory.file("error.log"))"
            LogLevel warn
            \(user)ServerName localhost
            Listen 127.0.0.1:\(port)
            LoadModule mpm_event_module \(modules)/mod_mpm_event.so
            LoadModule authz_core_module \(modules)/mod_authz_core.so
            LoadModule authn_core_module \(modules)/mod_authn_core.so
            LoadModule authz_user_module \(modules)/mod_authz_user.so
            LoadModule authnz_fcgi_module \(modules)/mod_authnz_fcgi.so
            LoadModule proxy_module \(modules)/mod_proxy.so
            LoadModule proxy_fcgi_module \(modules)/mod_proxy_fcgi.so
            LoadModule proxy_scgi_module \(modules)/mod_proxy_scgi.so
            LoadModule proxy_http_module \(modules)/mod_proxy_http.so
            LoadModule alias_module \(modules)/mod_alias.so
            LoadModule headers_module \(modules)/mod_headers.so
            LoadModule mime_module \(modules)/mod_mime.so
            LoadModule xsendfile_module \(xsendfile)
            TypesConfig /etc/mime.types
            Include "\(directory.file("gimlet.conf"))"

            """
        try main.write(toFile: directory.file("httpd.conf"), atomically: true, encoding: .utf8)
        process = try ManagedProcess("apache2", executable: apache, arguments: ["-X", "-f", directory.file("httpd.conf")],
                                     outputPath: directory.file("stderr.log"))
        let port = self.port
        guard waitUntil(seconds: 10, { canConnect(port: port) }) else {
            throw SetupError("apache2 did not start: \(process.output) \(errorLog)")
        }
    }

    deinit { process.stop() }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    var errorLog: String { (try? String(contentsOfFile: directory.file("error.log"), encoding: .utf8)) ?? "" }
}
