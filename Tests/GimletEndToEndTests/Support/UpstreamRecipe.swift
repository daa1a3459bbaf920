import Foundation

/// `deploy/nginx/gimlet-upstream.conf` for real: nginx with TLS (a fresh
/// self-signed certificate) and an upstream of Gimlet hosts on TCP, kept
/// FastCGI connections included.
struct UpstreamRecipe {
    let nginx: Nginx
    let directory: TemporaryDirectory

    /// nginx in front of the hosts listening on 127.0.0.1:`ports` (the
    /// recipe names two; a single port fills both lines).
    init(ports: [Int], directory: TemporaryDirectory) throws {
        let openssl = try ManagedProcess(
            "openssl", executable: "/usr/bin/openssl",
            arguments: ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                        "-keyout", directory.file("key.pem"), "-out", directory.file("cert.pem")],
            outputPath: directory.file("openssl.log"))
        guard openssl.waitForExit(seconds: 60) == 0 else { throw SetupError("openssl req failed: \(openssl.output)") }
        let first = ports[0], second = ports.count > 1 ? ports[1] : ports[0]
        nginx = try Nginx(socket: "unused", config: "gimlet-upstream.conf") { template, port in
            var text = template
                .replacingOccurrences(of: "server 10.0.0.11:9000;", with: "server 127.0.0.1:\(first);")
                .replacingOccurrences(of: "listen 8443 ssl;", with: "listen 127.0.0.1:\(port) ssl;")
                .replacingOccurrences(of: "/etc/ssl/gimlet/", with: directory.path + "/")
            // Two lines naming one server would double its weight, not add a host.
            text = text.replacingOccurrences(
                of: "server 10.0.0.12:9000;", with: second == first ? "" : "server 127.0.0.1:\(second);")
            return text
        }
        self.directory = directory
    }

    var baseURL: String { "https://127.0.0.1:\(nginx.port)" }

    func client() -> HTTPClient {
        var client = HTTPClient(baseURL: baseURL, scratch: directory, insecure: true)
        client.cookieJar = directory.file("jar")
        return client
    }
}
