import Foundation
import Gimlet
import Testing

/// session-lab's `GET /download/:bytes` through the recipes: nginx sending
/// the file on the app's `X-Accel-Redirect`, Apache on its `X-Sendfile`,
/// and the host sending it itself; whole, by range, and revalidated.
@Suite(.serialized) struct DownloadsBehindTheWebServers {
    enum Sender: String, CaseIterable, CustomTestStringConvertible {
        case nginxOffload = "nginx X-Accel-Redirect"
        case apacheOffload = "Apache X-Sendfile"
        case hostBehindNginx = "the host itself, behind nginx (FastCGI)"
        case hostBehindNginxSCGI = "the host itself, behind nginx (SCGI)"
        case hostBehindApache = "the host itself, behind Apache"
        var testDescription: String { rawValue }
        var recipe: Uploads.Recipe {
            switch self {
            case .nginxOffload, .hostBehindNginx: .nginxFastCGI
            case .hostBehindNginxSCGI: .nginxSCGI
            case .apacheOffload, .hostBehindApache: .apacheFastCGI
            }
        }
        var offload: String {
            switch self {
            case .nginxOffload: "nginx:/protected/"
            case .apacheOffload: "apache"
            default: "none"
            }
        }
    }

    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    @Test(arguments: Sender.allCases)
    func filesWholeByRangeAndRevalidated(sender: Sender) throws {
        let downloads = try TemporaryDirectory("gimlet-downloads")
        let stack = try Uploads.Stack(sender.recipe, binary: "session-lab", arguments: [
            "--secret", SessionLabBehindNginx.secret, "--downloads", downloads.path, "--file-offload", sender.offload,
        ]) { $0.replacingOccurrences(of: "/opt/gimlet/files", with: downloads.path) }
        let client = stack.client
        let before = Uploads.memory(of: stack.app.pid)
        for size in [0, 1, (1 << 20) + 1, 100 << 20] {
            let answer = try client.get("/download/\(size)")
            #expect(answer.status == 200, "\(size) B: \(answer.status) \(answer.text.prefix(200)) \(stack.serverLog().suffix(300))")
            #expect(answer.body.count == size && answer.body == Self.pattern(size), "\(size) B by \(sender): \(answer.body.count) B back")
            #expect(answer.header("X-Accel-Redirect") == nil && answer.header("X-Sendfile") == nil, "the offload header stays inside")
        }
        let grown = Uploads.memory(of: stack.app.pid).peak - before.resident
        #expect(grown < 32 << 20, "the app's resident set grew by \(grown >> 20) MiB sending 100 MiB")

        let range = try client.get("/download/1000", headers: ["Range": "bytes=100-199"])
        #expect(range.status == 206 && range.body == Array(Self.pattern(1000)[100..<200]), "\(range.status) \(range.headers)")
        #expect(range.header("Content-Range") == "bytes 100-199/1000")
        let past = try client.get("/download/1000", headers: ["Range": "bytes=5000-"])
        #expect(past.status == 416, "\(past.status)")
        let whole = try client.get("/download/1000")
        let etag = try #require(whole.header("ETag"), "\(whole.headers)")
        #expect(try client.get("/download/1000", headers: ["If-None-Match": etag]).status == 304)
        if let lastModified = whole.header("Last-Modified") {
            #expect(try client.get("/download/1000", headers: ["If-Modified-Since": lastModified]).status == 304)
        }
        // The web server's internal location is not reachable from outside.
        if sender == .nginxOffload {
            #expect(try client.get("/protected/pattern-1000.bin").status == 404)
        }
        #expect(stack.app.isRunning)
    }

    /// A path out of the download directory, sent through each web server as
    /// a browser or a script would: `..` percent-encoded into one segment,
    /// a NUL, a symbolic link out. Each is refused, by the web server or by
    /// `FileDownloads` with its log line, and no byte of the file outside
    /// comes back; a file inside still does.
    @Test(arguments: [Sender.nginxOffload, .hostBehindNginxSCGI, .apacheOffload])
    func aPathOutOfTheDirectoryIsRefused(sender: Sender) throws {
        let scratch = try TemporaryDirectory("gimlet-confined")
        let root = scratch.file("files")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "inside\n".write(toFile: root + "/inside.txt", atomically: true, encoding: .utf8)
        try "outside-secret\n".write(toFile: scratch.file("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: scratch.file("secret.txt"))
        let stack = try Uploads.Stack(sender.recipe, binary: "session-lab", arguments: [
            "--secret", SessionLabBehindNginx.secret, "--downloads", root, "--file-offload", sender.offload,
        ]) { $0.replacingOccurrences(of: "/opt/gimlet/files", with: root) }
        let inside = try stack.client.get("/file/inside.txt")
        #expect(inside.status == 200 && inside.text == "inside\n", "\(inside.status) \(inside.text.prefix(200))")
        for path in ["/file/..%2Fsecret.txt", "/file/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/file/inside.txt%00.bin",
                     "/file/escape", "/download/..%2F..%2Fsecret.txt"] {
            let answer = try stack.client.get(path)
            #expect([400, 403, 404].contains(answer.status), "\(path) through \(sender): \(answer.status)")
            #expect(!answer.text.contains("outside-secret") && !answer.text.contains("root:x:0"), "\(path) leaked the file")
        }
        #expect(stack.app.output.contains("path_traversal"), "no security log line: \(stack.app.output.suffix(600))")
        #expect(stack.app.isRunning)
    }
}
