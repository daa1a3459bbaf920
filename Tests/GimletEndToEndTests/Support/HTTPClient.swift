import Foundation

/// An HTTP response as curl saw it.
struct HTTPResult {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// A real HTTP client for the end-to-end tests: curl, one process per request.
struct HTTPClient {
    let baseURL: String
    let scratch: TemporaryDirectory
    /// A curl cookie jar file kept between requests, like a browser's.
    var cookieJar: String?
    /// Accept a self-signed certificate (the tests' own TLS).
    var insecure = false
    /// How long one request may take before curl gives up.
    var maxTime = 30
    /// The loopback address requests come from (`127.0.0.2`: another client, as nginx's `$remote_addr` sees it).
    var sourceAddress: String?

    init(baseURL: String, scratch: TemporaryDirectory, insecure: Bool = false) {
        self.baseURL = baseURL
        self.scratch = scratch
        self.insecure = insecure
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> HTTPResult {
        try request("GET", path, headers: headers)
    }

    func request(_ method: String, _ path: String, body: [UInt8]? = nil,
                 headers: [String: String] = [:]) throws -> HTTPResult {
        var arguments = ["-sS", "-i", "--http1.1", "--max-time", String(maxTime), "-H", "Expect:"]
        if method == "HEAD" { arguments.append("-I") } else { arguments += ["-X", method] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let cookieJar { arguments += ["-b", cookieJar, "-c", cookieJar] }
        if insecure { arguments.append("-k") }
        if let sourceAddress { arguments += ["--interface", sourceAddress] }
        if let body {
            let file = scratch.file("body-\(UUID().uuidString)")
            _ = FileManager.default.createFile(atPath: file, contents: Data(body))
            arguments += ["--data-binary", "@" + file]
        }
        arguments.append(baseURL + path)
        let output = try run(arguments)
        return try Self.parse(output)
    }

    /// POSTs the file at `file` as the body, streamed from disk by curl
    /// (`-T`: any size, in bounded memory), with its `Content-Length`, or
    /// chunked (no length) when `chunked`.
    func upload(_ path: String, file: String, contentType: String = "application/octet-stream", chunked: Bool = false,
                headers: [String: String] = [:], maxTime: Int = 300) throws -> HTTPResult {
        var arguments = ["-sS", "-i", "--http1.1", "--max-time", String(maxTime), "-H", "Expect:", "-X", "POST",
                         "-T", file, "-H", "Content-Type: \(contentType)"]
        if chunked { arguments += ["-H", "Transfer-Encoding: chunked"] }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let cookieJar { arguments += ["-b", cookieJar, "-c", cookieJar] }
        arguments.append(baseURL + path)
        return try Self.parse(try run(arguments))
    }

    /// POSTs a `multipart/form-data` form as curl builds it (`-F`): text
    /// fields, then files read from disk as they are sent.
    func multipart(_ path: String, fields: [(String, String)], files: [(name: String, path: String)],
                   maxTime: Int = 300) throws -> HTTPResult {
        var arguments = ["-sS", "-i", "--http1.1", "--max-time", String(maxTime), "-H", "Expect:"]
        for (name, value) in fields { arguments += ["--form-string", "\(name)=\(value)"] }
        for file in files { arguments += ["-F", "\(file.name)=@\(file.path)"] }
        if let cookieJar { arguments += ["-b", cookieJar, "-c", cookieJar] }
        arguments.append(baseURL + path)
        return try Self.parse(try run(arguments))
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded`, in order.
    func postForm(_ path: String, _ fields: [(String, String)], headers: [String: String] = [:]) throws -> HTTPResult {
        let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            .joined(separator: "&")
        return try request("POST", path, body: Array(body.utf8),
                           headers: headers.merging(["Content-Type": "application/x-www-form-urlencoded"]) { $1 })
    }

    /// The CSRF token of the page at `path` (its hidden `csrf_token` field: 40 hex digits).
    func csrfToken(from path: String = "/") throws -> String {
        let page = try get(path)
        guard let token = page.text.components(separatedBy: "\"").first(where: { $0.count == 40 && $0.allSatisfy(\.isHexDigit) }) else {
            throw SetupError("no CSRF token on \(path): \(page.status) \(page.text.prefix(300))")
        }
        return token
    }

    /// The jar's cookies by name (curl's Netscape format; HttpOnly lines are prefixed).
    var jarCookies: [String: String] {
        let text = cookieJar.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? ""
        var cookies: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("# ") && !line.isEmpty {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count >= 7 { cookies[String(fields[5])] = String(fields[6]) }
        }
        return cookies
    }

    /// The jar's cookies as a `Cookie` header value.
    var jarCookieHeader: String { jarCookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ") }

    /// Runs `count` GETs of `path(i)` through `connections` parallel connections
    /// in one curl, returning (status, body) by index.
    func parallelGets(count: Int, connections: Int, headers: [String: String] = [:],
                      path: (Int) -> String) throws -> [(status: Int, body: String)] {
        var config = ""
        for (name, value) in headers { config += "header = \"\(name): \(value)\"\n" }
        for index in 0..<count {
            config += "url = \"\(baseURL)\(path(index))\"\noutput = \"\(scratch.file("par-\(index)"))\"\n"
        }
        let statusByFile = try runParallel(config, name: "parallel", connections: connections, maxTime: 60,
                                           extra: ["-w", "%{http_code} %{filename_effective}\\n"])
        return (0..<count).map { index in
            let file = scratch.file("par-\(index)")
            let body = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            return (statusByFile[file] ?? 0, body)
        }
    }

    /// Runs `count` POSTs to `path`, request `i` sending the file
    /// `bodyFile(i)`, through `connections` parallel connections in one curl.
    /// Returns the status and the path of the saved response body, by index.
    func parallelPosts(count: Int, connections: Int, path: String, contentType: String = "application/octet-stream",
                       bodyFile: (Int) -> String) throws -> [(status: Int, responseFile: String)] {
        // `next` resets every per-transfer option, so each block carries its own.
        var config = ""
        for index in 0..<count {
            if index > 0 { config += "next\n" }
            config += "url = \"\(baseURL)\(path)\"\ndata-binary = \"@\(bodyFile(index))\"\n"
            config += "header = \"Content-Type: \(contentType)\"\nheader = \"Expect:\"\n"
            config += "output = \"\(scratch.file("post-\(index)"))\"\n"
            config += "write-out = \"%{http_code} %{filename_effective}\\\\n\"\n"
        }
        let statusByFile = try runParallel(config, name: "posts", connections: connections, maxTime: 120)
        return (0..<count).map { index in
            let file = scratch.file("post-\(index)")
            return (statusByFile[file] ?? 0, file)
        }
    }

    /// Runs one parallel curl on the config file text `config` (whose
    /// transfers write "status file" lines), returning each output file's status.
    private func runParallel(_ config: String, name: String, connections: Int, maxTime: Int,
                             extra: [String] = []) throws -> [String: Int] {
        let configFile = scratch.file(name + ".conf")
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
        let output = try run(["-sS", "--http1.1", "--parallel", "--parallel-max", "\(connections)",
                              "--max-time", "\(maxTime)"] + (insecure ? ["-k"] : []) + extra + ["-K", configFile],
                             allowFailure: true)
        var statusByFile: [String: Int] = [:]
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let status = Int(parts[0]) { statusByFile[String(parts[1])] = status }
        }
        return statusByFile
    }

    private func run(_ arguments: [String], allowFailure: Bool = false) throws -> [UInt8] {
        let result = try runToCompletion(try Tool.curl(), arguments)
        guard allowFailure || result.status == 0 else {
            throw SetupError("curl \(arguments.last ?? "") failed: \(String(decoding: result.errors, as: UTF8.self))")
        }
        return result.output
    }

    static func parse(_ output: [UInt8]) throws -> HTTPResult {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = output.firstRange(of: separator) else {
            throw SetupError("no header block in: \(String(decoding: output.prefix(200), as: UTF8.self))")
        }
        let head = String(decoding: output[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, statusLine.split(separator: " ").count >= 2,
              let status = Int(statusLine.split(separator: " ")[1])
        else { throw SetupError("bad status line in \(head)") }
        let headers = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return HTTPResult(status: status, headers: headers, body: Array(output[end.upperBound...]))
    }
}
