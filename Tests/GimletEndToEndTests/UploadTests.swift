import Foundation
import Gimlet
import GimletTesting
import Testing

/// Uploads of every size through every recipe, with nginx's request
/// buffering on (its default) and off, and through Apache: session-lab's
/// `POST /upload` hashes the body as it arrives (`RouteOptions.streamBody`),
/// and hello's `/echo` gets a body past `--body-buffer` in a temporary file.
@Suite(.serialized) struct Uploads {
    enum Recipe: String, CaseIterable, CustomTestStringConvertible {
        case nginxFastCGI = "nginx → FastCGI"
        case nginxSCGI = "nginx → SCGI"
        case nginxFastCGIUnbuffered = "nginx → FastCGI, fastcgi_request_buffering off"
        case nginxSCGIUnbuffered = "nginx → SCGI, scgi_request_buffering off"
        case apacheFastCGI = "Apache → FastCGI"
        case apacheSCGI = "Apache → SCGI"
        var testDescription: String { rawValue }
        var scgi: Bool { [.nginxSCGI, .nginxSCGIUnbuffered, .apacheSCGI].contains(self) }
        var apache: Bool { self == .apacheFastCGI || self == .apacheSCGI }
        var unbuffered: Bool { self == .nginxFastCGIUnbuffered || self == .nginxSCGIUnbuffered }
    }

    /// An app behind the recipe's web server, stopped when the value goes away.
    final class Stack: @unchecked Sendable {
        // @unchecked: immutable after init.
        let directory: TemporaryDirectory
        let app: ManagedProcess
        let server: AnyObject
        let serverLog: () -> String
        let client: HTTPClient

        /// `edit` changes the web server's recipe further (nginx's after its port and socket).
        init(_ recipe: Recipe, binary: String, arguments: [String] = [], edit: @escaping (String) -> String = { $0 }) throws {
            directory = try TemporaryDirectory("gimlet-uploads")
            let socket = directory.file("app.sock")
            app = try ManagedProcess(
                binary, executable: try Repository.binary(binary),
                arguments: [recipe.scgi ? "--scgi" : "--fastcgi", "unix:" + socket, "--socket-mode", "666", "--threads", "2"]
                    + arguments,
                outputPath: directory.file("app.log"),
                environment: Self.measurable(ProcessInfo.processInfo.environment.merging(["GIMLET_DATA_DIR": directory.file("data")]) { $1 }))
            let baseURL: String
            if recipe.apache {
                let apache = try Apache(socket: socket, config: recipe.scgi ? "gimlet-scgi.conf" : "gimlet-fcgi.conf", edit: edit)
                (baseURL, server, serverLog) = (apache.baseURL, apache, { apache.errorLog })
            } else {
                let config = recipe.scgi ? "gimlet-scgi.conf" : "gimlet.conf"
                let pass = recipe.scgi ? "scgi_pass" : "fastcgi_pass"
                let buffering = recipe.scgi ? "scgi_request_buffering off;" : "fastcgi_request_buffering off;"
                let unbuffered = recipe.unbuffered
                let nginx = try Nginx(socket: socket, config: config) { template, port in
                    var text = template.replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(port);")
                        .replacingOccurrences(of: "unix:/run/gimlet/app.sock", with: "unix:" + socket)
                    if unbuffered {
                        text = text.replacingOccurrences(of: "        \(pass) ", with: "        \(buffering)\n        \(pass) ")
                    }
                    return edit(text)
                }
                (baseURL, server, serverLog) = (nginx.baseURL, nginx, { nginx.errorLog })
            }
            client = HTTPClient(baseURL: baseURL, scratch: directory)
            let client = self.client
            let probe = binary == "hello" ? "/" : "/hello"
            guard waitUntil(seconds: 10, { (try? client.get(probe).status) == 200 }) else {
                throw SetupError("\(binary) did not answer through \(recipe): \(app.output) \(serverLog())")
            }
        }

        /// `environment` with AddressSanitizer's quarantine off when the
        /// tests run under it (`make test-asan`): it keeps up to 256 MiB of
        /// freed memory from reuse, so the resident set these tests bound
        /// would measure the sanitizer, not the app. Everything else it
        /// checks stays on.
        static func measurable(_ environment: [String: String]) -> [String: String] {
            guard let options = environment["ASAN_OPTIONS"], !options.isEmpty else { return environment }
            var changed = environment
            changed["ASAN_OPTIONS"] = options + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
            return changed
        }

        deinit {
            if let nginx = server as? Nginx { nginx.process.stop() }
            if let apache = server as? Apache { apache.process.stop() }
            app.stop()
        }
    }

    /// A file of `size` bytes whose byte i is `i % 251`, and its SHA-256.
    static func patternFile(_ size: Int, in directory: TemporaryDirectory) throws -> (path: String, sha256: String) {
        let path = directory.file("upload-\(size)")
        let period = (0..<(251 * 4096)).map { UInt8($0 % 251) }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let hasher = SHA256Hasher()
        var written = 0
        while written < size {
            let chunk = Array(period.prefix(size - written))
            try handle.write(contentsOf: chunk)
            hasher.update(chunk)
            written += chunk.count
        }
        try handle.close()
        return (path, hasher.hexDigest())
    }

    /// The process's resident set now, and its peak so far, in bytes (`/proc/<pid>/status`).
    static func memory(of pid: Int32) -> (resident: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func kibibytes(_ field: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (kibibytes("VmRSS"), kibibytes("VmHWM"))
    }

    @Test(arguments: Recipe.allCases)
    func everySizeArrivesWholeInBoundedMemory(recipe: Recipe) throws {
        let stack = try Stack(recipe, binary: "session-lab", arguments: ["--secret", SessionLabBehindNginx.secret])
        let before = Self.memory(of: stack.app.pid)
        for size in [0, 1, (1 << 20) - 1, (1 << 20) + 1, 100 << 20] {
            let (file, sha256) = try Self.patternFile(size, in: stack.directory)
            let answer = try stack.client.upload("/upload", file: file)
            #expect(answer.status == 200, "\(size) B: \(answer.status) \(answer.text.prefix(200)) \(stack.serverLog().suffix(400))")
            #expect(answer.text == "-\t-\t\(size)\t\(sha256)\n", "\(size) B through \(recipe)")
            try? FileManager.default.removeItem(atPath: file)
        }
        // The same files in multipart forms, as curl -F sends them: each file part spooled as it arrives.
        for size in [0, (1 << 20) + 1, 99 << 20] {   // 100 MiB and the form's framing would be over the limit
            let (file, sha256) = try Self.patternFile(size, in: stack.directory)
            let answer = try stack.client.multipart("/upload", fields: [("title", "Hello, wörld")], files: [("file", file)])
            let title = SHA256Hasher()
            title.update(Array("Hello, wörld".utf8))
            let expected = "title\t-\t13\t\(title.hexDigest())\nfile\tupload-\(size)\t\(size)\t\(sha256)\n"
            #expect(answer.status == 200 && answer.text == expected,
                    "multipart \(size) B: \(answer.status) \(answer.text.prefix(300)) \(stack.serverLog().suffix(400))")
            try? FileManager.default.removeItem(atPath: file)
        }
        let grown = Self.memory(of: stack.app.pid).peak - before.resident
        #expect(grown < 32 << 20, "the app's resident set grew by \(grown >> 20) MiB during 100 MiB uploads")
        // Bodies without a length (chunked): nginx buffers them and sets one;
        // Apache's mod_proxy_fcgi passes them on without one; mod_proxy_scgi
        // answers 411 Length Required itself.
        if recipe == .apacheFastCGI {
            let (file, sha256) = try Self.patternFile((1 << 20) + 1, in: stack.directory)
            let answer = try stack.client.upload("/upload", file: file, chunked: true)
            #expect(answer.status == 200 && answer.text == "-\t-\t\((1 << 20) + 1)\t\(sha256)\n",
                    "chunked: \(answer.status) \(answer.text.prefix(200)) \(stack.serverLog().suffix(400))")
        }
        #expect(stack.app.isRunning)
    }

    /// Broken multipart bodies through nginx: each a 400 or a 413 from the
    /// app, never a 5xx, and the app keeps serving.
    @Test(arguments: [Recipe.nginxFastCGI, .nginxSCGIUnbuffered])
    func malformedMultipartIs400Or413(recipe: Recipe) throws {
        let stack = try Stack(recipe, binary: "session-lab", arguments: ["--secret", SessionLabBehindNginx.secret])
        let boundary = "----gimletTEST"
        let corpus = MalformedMultipart.corpus(boundary: boundary)
        #expect(corpus.count >= 200)
        var files: [String] = []
        for (index, body) in corpus.enumerated() {
            let file = stack.directory.file("malformed-\(index)")
            _ = FileManager.default.createFile(atPath: file, contents: Data(body))
            files.append(file)
        }
        let results = try stack.client.parallelPosts(count: corpus.count, connections: 8, path: "/upload",
                                                     contentType: "multipart/form-data; boundary=\(boundary)") { files[$0] }
        let wrong = results.enumerated().filter { $0.element.status != 400 && $0.element.status != 413 }
        #expect(wrong.isEmpty, "\(wrong.count) answered otherwise, e.g. \(wrong.prefix(3).map { "#\($0.offset): \($0.element.status)" }) \(stack.serverLog().suffix(300))")
        #expect(try stack.client.get("/hello").status == 200)
        #expect(stack.app.isRunning)
    }

    /// A `.streamBody` route gets its body straight from the web server, never
    /// spooled, with the operator's paths in front of the app too (the host
    /// wraps the router then): a slow upload past --body-buffer opens no
    /// file in --body-temp-dir, while hello's `/echo` does.
    @Test func aStreamedRouteIsNeverSpooled() throws {
        let temporary = try TemporaryDirectory("gimlet-spool")
        let stack = try Stack(.nginxFastCGIUnbuffered, binary: "session-lab", arguments: [
            "--secret", SessionLabBehindNginx.secret, "--status-path", "/-/status", "--body-temp-dir", temporary.path,
        ])
        let (file, sha256) = try Self.patternFile(6 << 20, in: stack.directory)
        let curl = try ManagedProcess(
            "curl", executable: try Tool.curl(),
            arguments: ["-sS", "--http1.1", "-H", "Expect:", "-X", "POST", "-T", file, "--limit-rate", "3M",
                        "-o", stack.directory.file("answer"), stack.client.baseURL + "/upload"],
            outputPath: stack.directory.file("curl.log"))
        var spooled = false
        while curl.isRunning {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(stack.app.pid)/fd")) ?? []
            spooled = spooled || fds.contains {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(stack.app.pid)/fd/\($0)"))?
                    .hasPrefix(temporary.path + "/") == true
            }
            usleep(20_000)   // sampling the app's descriptors while the upload runs (about 2 s)
        }
        #expect(!spooled, "a .streamBody route's body went to a temporary file")
        let answer = (try? String(contentsOfFile: stack.directory.file("answer"), encoding: .utf8)) ?? ""
        #expect(answer == "-\t-\t\(6 << 20)\t\(sha256)\n", "\(answer) \(curl.output)")
    }

    /// The once-only giant: 1 GiB through nginx, hashed as it
    /// arrives, the app's memory flat.
    @Test func aGibibyteUploadInBoundedMemory() throws {
        // The recipes allow the host's default (100m); this one test lets both take more.
        let stack = try Stack(.nginxFastCGI, binary: "session-lab",
                              arguments: ["--secret", SessionLabBehindNginx.secret, "--max-body", "2g"]) {
            $0.replacingOccurrences(of: "client_max_body_size 100m;", with: "client_max_body_size 2g;")
        }
        let nginx = try #require(stack.server as? Nginx)
        let before = Self.memory(of: stack.app.pid)
        let (file, sha256) = try Self.patternFile(1 << 30, in: stack.directory)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let answer = try stack.client.upload("/upload", file: file, maxTime: 600)
        #expect(answer.text == "-\t-\t\(1 << 30)\t\(sha256)\n", "\(answer.status) \(answer.text.prefix(200)) \(nginx.errorLog.suffix(400))")
        let grown = Self.memory(of: stack.app.pid).peak - before.resident
        #expect(grown < 32 << 20, "the app's resident set grew by \(grown >> 20) MiB during a 1 GiB upload")
    }

    /// A client that stops mid-upload, its body being spooled (hello's
    /// `/echo`, nginx passing the body on as it comes): the temporary file is
    /// gone, nothing is answered, and the worker serves the next request.
    @Test(arguments: [Recipe.nginxFastCGIUnbuffered, .nginxSCGIUnbuffered])
    func aClientThatStopsMidUploadLeavesNothing(recipe: Recipe) throws {
        let temporary = try TemporaryDirectory("gimlet-spool")
        let app = try Stack(recipe, binary: "hello", arguments: ["--max-body", "64m", "--body-temp-dir", temporary.path])
        let (file, _) = try Self.patternFile(32 << 20, in: app.directory)
        let curl = try ManagedProcess(
            "curl", executable: try Tool.curl(),
            arguments: ["-sS", "--http1.1", "-H", "Expect:", "-X", "POST", "-T", file, "--limit-rate", "4M",
                        "-o", "/dev/null", app.client.baseURL + "/echo"],
            outputPath: app.directory.file("curl.log"))
        // Spooled: an unnamed file in the directory is open in the app (and listed nowhere).
        func spoolFiles() -> [String] {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(app.app.pid)/fd")) ?? []
            return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(app.app.pid)/fd/\($0)") }
                .filter { $0.hasPrefix(temporary.path + "/") }
        }
        #expect(waitUntil(seconds: 10) { !spoolFiles().isEmpty }, "the body was spooled: \(app.app.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty)
        curl.send(SIGKILL)
        #expect(waitUntil(seconds: 10) { spoolFiles().isEmpty }, "the spool file closed: \(spoolFiles())")
        #expect(waitUntil(seconds: 5) { app.app.output.contains("request body ended early; request dropped") }, "\(app.app.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path).isEmpty)
        for _ in 0..<4 { #expect(try app.client.get("/").status == 200) }
        let echoed = try app.client.request("POST", "/echo", body: [1, 2, 3])
        #expect(echoed.status == 200 && echoed.body == [1, 2, 3])
    }
}
