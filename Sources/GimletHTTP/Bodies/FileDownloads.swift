/// Who sends a download's bytes.
public enum FileOffload: Sendable, Equatable, CustomStringConvertible {
    /// The host sends the file itself, in bounded memory, with `ETag`,
    /// `Last-Modified`, `304 Not Modified` and single byte ranges (`206`, `416`).
    case none
    /// nginx sends it: the app answers only `X-Accel-Redirect` to
    /// `internalPrefix` + the file's path under the root, an `internal`
    /// location of the recipe that aliases the root.
    case nginx(internalPrefix: String)
    /// Apache sends it (Debian's `libapache2-mod-xsendfile`): the app
    /// answers only `X-Sendfile` with the file's absolute path, which the
    /// recipe's `XSendFilePath` allows.
    case apache

    /// Reads `none`, `nginx:/internal-prefix/` or `apache` (the host's
    /// `GIMLET_FILE_OFFLOAD`, an app's own option); `nil` for anything else.
    public init?(_ text: String) {
        if text == "none" { self = .none; return }
        if text == "apache" { self = .apache; return }
        guard text.hasPrefix("nginx:/"), text.hasSuffix("/"), !text.contains(".."), !text.contains("\r"), !text.contains("\n")
        else { return nil }
        self = .nginx(internalPrefix: String(text.dropFirst("nginx:".count)))
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .nginx(let prefix): "nginx:" + prefix
        case .apache: "apache"
        }
    }
}

/// Protected downloads from one directory: the app decides who may have a
/// file (its session, its database), then answers with it; the web server
/// sends the bytes where an offload is configured, the host otherwise.
///
/// ```swift
/// let downloads = try FileDownloads(root: "/srv/attachments", offload: .nginx(internalPrefix: "/protected/"))
/// router.get("/attachments/:id") { request in
///     guard let owned = try store.attachment(request.parameters["id"], of: request.session.user) else {
///         throw HTTPError(.notFound)   // another user's attachment: as if it did not exist
///     }
///     return try downloads.response(owned.path, for: request, downloadName: owned.name)
/// }
/// ```
///
/// Paths are confined to the root: a path with `..` or a NUL is refused
/// (`400`), one that leads out of the root through a symbolic link is
/// refused (`403`), each with a log line (`security_event=path_traversal`);
/// a missing file, or anything but a regular file, is a `404`.
public struct FileDownloads: Sendable {
    /// The directory, resolved (symbolic links followed) when it was given.
    public let root: String
    /// Who sends the bytes.
    public var offload: FileOffload

    /// Downloads from `root`, which must be an existing directory.
    ///
    /// - Throws: ``FileDownloadsError`` when it is not.
    public init(root: String, offload: FileOffload = .none) throws(FileDownloadsError) {
        guard let resolved = FilePaths.resolved(root), FileInfo(path: resolved).map({ !$0.isRegular }) == true else {
            throw FileDownloadsError("the download directory \(root) does not exist (or is not a directory)")
        }
        self.root = resolved
        self.offload = offload
    }

    /// The response that sends the file at `path` (relative to ``root``).
    ///
    /// - Parameters:
    ///   - path: the file under the root, `/`-separated.
    ///   - request: the request: its method, `If-None-Match`,
    ///     `If-Modified-Since`, `Range` and `If-Range` when the host sends
    ///     the file, its logger for a refused path.
    ///   - contentType: the file's type; by its extension when `nil`.
    ///   - downloadName: a name for the browser to save it under
    ///     (`Content-Disposition: attachment`); shown inline when `nil`.
    /// - Throws: ``HTTPError``: `400` or `403` for a path out of the root,
    ///   `404` for a missing file.
    public func response(_ path: String, for request: Request, contentType: String? = nil,
                         downloadName: String? = nil) throws(HTTPError) -> Response {
        let (resolved, relative) = try confine(path, request: request)
        guard let info = FileInfo(path: resolved), info.isRegular else { throw HTTPError(.notFound) }
        var headers = HTTPHeaders()
        headers["Content-Type"] = contentType ?? Self.contentType(of: relative)
        if let downloadName { headers["Content-Disposition"] = Self.attachment(downloadName) }
        // A protected file: no shared cache may keep it.
        headers["Cache-Control"] = "private"
        switch offload {
        case .nginx(let prefix):
            headers["X-Accel-Redirect"] = prefix + PercentEncoding.path(relative)
            return Response(status: .ok, headers: headers)
        case .apache:
            headers["X-Sendfile"] = resolved
            return Response(status: .ok, headers: headers)
        case .none:
            return Self.served(resolved, info: info, headers: headers, request: request)
        }
    }

    /// The file's resolved path and its path under the root, or the refusal.
    private func confine(_ path: String, request: Request) throws(HTTPError) -> (String, String) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !path.utf8.contains(0), !segments.contains("..") else {
            refused(path, request: request, reason: "a .. segment or a NUL")
            throw HTTPError(.badRequest, "invalid file path")
        }
        guard !segments.isEmpty, let resolved = FilePaths.resolved(root + "/" + segments.joined(separator: "/")) else {
            throw HTTPError(.notFound)
        }
        guard resolved.hasPrefix(root + "/") else {
            refused(path, request: request, reason: "a symbolic link out of the download directory")
            throw HTTPError(.forbidden, "the file is outside the download directory")
        }
        return (resolved, String(resolved.dropFirst(root.count + 1)))
    }

    private func refused(_ path: String, request: Request, reason: String) {
        request.logger.warning("download path refused: \(reason)", metadata: [
            "security_event": "path_traversal", "path": "\(String(reflecting: String(path.prefix(200))))",
            "root": "\(root)",
        ])
    }

    /// The host's own answer: 200, 206, 304 or 416.
    static func served(_ path: String, info: FileInfo, headers: HTTPHeaders, request: Request) -> Response {
        var headers = headers
        let etag = "\"\(String(info.size, radix: 16))-\(String(info.modifiedSeconds, radix: 16))\(String(info.modifiedNanoseconds, radix: 16))\""
        let lastModified = HTTPDate.format(unixSeconds: info.modifiedSeconds)
        headers["ETag"] = etag
        headers["Last-Modified"] = lastModified
        headers["Accept-Ranges"] = "bytes"
        let conditional = request.method == .get || request.method == .head
        if conditional, Self.notModified(request, etag: etag, lastModified: lastModified) {
            headers["Content-Type"] = nil
            headers["Content-Disposition"] = nil
            return Response(status: .notModified, headers: headers)
        }
        var offset = 0, length = info.size
        if conditional, let range = request.headers["Range"], Self.rangeApplies(request, etag: etag, lastModified: lastModified) {
            switch ByteRange.parse(range, size: info.size) {
            case .whole:
                break
            case .part(let start, let end):
                offset = start
                length = end - start + 1
                headers["Content-Range"] = "bytes \(start)-\(end)/\(info.size)"
                headers["Content-Length"] = "\(length)"
                var response = Response(status: .partialContent, headers: headers)
                response.file = ResponseFile(path: path, offset: offset, length: length, size: info.size)
                return response
            case .unsatisfiable:
                var refusal = Response(status: .rangeNotSatisfiable, headers: ["Content-Range": "bytes */\(info.size)"])
                refusal.headers["Content-Type"] = "text/plain; charset=utf-8"
                refusal.body = Array("range not satisfiable\n".utf8)
                return refusal
            }
        }
        headers["Content-Length"] = "\(length)"
        var response = Response(status: .ok, headers: headers)
        response.file = ResponseFile(path: path, offset: offset, length: length, size: info.size)
        return response
    }

    /// `If-None-Match` (a strong or weak match, or `*`) first; else an
    /// `If-Modified-Since` equal to `Last-Modified` (as nginx's
    /// `if_modified_since exact`: browsers send back what they got).
    static func notModified(_ request: Request, etag: String, lastModified: String) -> Bool {
        if let match = request.headers["If-None-Match"] {
            return match.split(separator: ",").contains { candidate in
                var tag = candidate.trimmingCharacters(in: " \t")
                if tag.hasPrefix("W/") { tag.removeFirst(2) }
                return tag == etag || tag == "*"
            }
        }
        return request.headers["If-Modified-Since"] == lastModified
    }

    /// Whether `Range` is to be honoured: no `If-Range`, or one that names this version.
    static func rangeApplies(_ request: Request, etag: String, lastModified: String) -> Bool {
        guard let condition = request.headers["If-Range"] else { return true }
        return condition == etag || condition == lastModified
    }

    /// `attachment` with the name as ASCII (others replaced) and as UTF-8 (RFC 6266).
    static func attachment(_ name: String) -> String {
        let ascii = String(name.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && scalar.value >= 0x20 && scalar != "\"" && scalar != "\\" && scalar.value != 0x7f ? Character(scalar) : "_"
        })
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(PercentEncoding.path(name, keepSlash: false))"
    }

    /// A type for common extensions; `application/octet-stream` otherwise.
    static func contentType(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "txt": return "text/plain; charset=utf-8"
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "csv": return "text/csv; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json": return "application/json"
        case "pdf": return "application/pdf"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "svg": return "image/svg+xml"
        case "zip": return "application/zip"
        case "gz": return "application/gzip"
        case "mp4": return "video/mp4"
        case "mp3": return "audio/mpeg"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}

/// The download directory is unusable.
public struct FileDownloadsError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and how to fix it.
    public let description: String

    init(_ description: String) { self.description = description }
}

/// One `Range: bytes=…` header against a file's size (RFC 9110 §14).
enum ByteRange: Equatable {
    /// Serve the whole file: no usable range (bad syntax, another unit,
    /// several ranges: a server may ignore those).
    case whole
    /// Bytes `start` through `end`, both included.
    case part(start: Int, end: Int)
    /// A range that starts past the end: `416`.
    case unsatisfiable

    static func parse(_ header: String, size: Int) -> ByteRange {
        let text = header.trimmingCharacters(in: " \t")
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: " \t")
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingCharacters(in: " \t"), last = spec[spec.index(after: dash)...].trimmingCharacters(in: " \t")
        func number(_ digits: String) -> Int? {
            guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(digits)
        }
        if first.isEmpty {
            // The last N bytes.
            guard let suffix = number(last) else { return .whole }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .part(start: max(0, size - suffix), end: size - 1)
        }
        guard let start = number(first) else { return .whole }
        let end: Int
        if last.isEmpty { end = size - 1 } else {
            guard let given = number(last), given >= start else { return .whole }
            end = min(given, size - 1)
        }
        return start < size ? .part(start: start, end: end) : .unsatisfiable
    }
}

enum PercentEncoding {
    /// `text` with everything but RFC 3986's unreserved characters (and
    /// `/`, unless told) percent-encoded as UTF-8.
    static func path(_ text: String, keepSlash: Bool = true) -> String {
        var out = ""
        for byte in text.utf8 {
            let unreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E || (keepSlash && byte == 0x2F)
            if unreserved {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]], as: UTF8.self)
            }
        }
        return out
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters of `characters`.
    fileprivate func trimmingCharacters(in characters: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
