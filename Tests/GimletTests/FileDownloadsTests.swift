import Foundation
import GimletHTTP
import GimletTesting
import Testing

/// Downloads the host sends itself (ranges, 304s, confinement) and the
/// offload headers, through the transports' exchange.
@Suite struct Downloads {
    static func setUp(offload: FileOffload = .none) throws -> (TestClient, String) {
        let directory = try RequestBodies.directory()
        try FileManager.default.createDirectory(atPath: directory + "/files/sub dir", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory + "/files/sub dir/report.csv", contents: Data(RequestBodies.bytes(300_000)))
        _ = FileManager.default.createFile(atPath: directory + "/secret.txt", contents: Data("outside".utf8))
        try FileManager.default.createSymbolicLink(atPath: directory + "/files/escape", withDestinationPath: directory + "/secret.txt")
        let downloads = try FileDownloads(root: directory + "/files", offload: offload)
        var router = Router()
        router.get("/files/*") { request in
            try downloads.response(request.parameters["*"] ?? "", for: request, downloadName: request.query["as"])
        }
        return (TestClient(router), directory)
    }

    @Test func theHostSendsTheWholeFileWithItsValidators() throws {
        let (client, directory) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let whole = client.get("/files/sub%20dir/report.csv?as=Q1%20r%C3%A9sum%C3%A9.csv")
        #expect(whole.status == 200)
        #expect(whole.response.body == RequestBodies.bytes(300_000))
        #expect(whole.header("Content-Length") == "300000")
        #expect(whole.header("Content-Type") == "text/csv; charset=utf-8")
        #expect(whole.header("Content-Disposition") == "attachment; filename=\"Q1 r_sum_.csv\"; filename*=UTF-8''Q1%20r%C3%A9sum%C3%A9.csv")
        #expect(whole.header("Accept-Ranges") == "bytes")
        #expect(whole.header("Cache-Control") == "private")
        let etag = try #require(whole.header("ETag"))
        let lastModified = try #require(whole.header("Last-Modified"))
        let head = client.request("HEAD", "/files/sub%20dir/report.csv")
        #expect(head.status == 200 && head.response.body.isEmpty && head.header("Content-Length") == "300000")
        // Conditional requests: 304 without a body or a length.
        let unchanged = client.get("/files/sub%20dir/report.csv", headers: ["If-None-Match": "\"x\", \(etag)"])
        #expect(unchanged.status == 304 && unchanged.response.body.isEmpty && unchanged.header("Content-Length") == nil)
        #expect(client.get("/files/sub%20dir/report.csv", headers: ["If-Modified-Since": lastModified]).status == 304)
        #expect(client.get("/files/sub%20dir/report.csv", headers: ["If-None-Match": "\"other\""]).status == 200)
    }

    @Test(arguments: [
        ("bytes=0-99", 206, "bytes 0-99/300000", 0, 100),
        ("bytes=299990-", 206, "bytes 299990-299999/300000", 299_990, 10),
        ("bytes=-5", 206, "bytes 299995-299999/300000", 299_995, 5),
        ("bytes=100-999999", 206, "bytes 100-299999/300000", 100, 299_900),
        ("bytes=300000-", 416, "bytes */300000", 0, 0),
        ("bytes=0-1,5-6", 200, nil, 0, 300_000),
        ("items=0-1", 200, nil, 0, 300_000),
        ("bytes=9-3", 200, nil, 0, 300_000),
    ] as [(String, Int, String?, Int, Int)])
    func singleByteRanges(range: String, status: Int, contentRange: String?, offset: Int, length: Int) throws {
        let (client, directory) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let answer = client.get("/files/sub%20dir/report.csv", headers: ["Range": range])
        #expect(answer.status == status)
        #expect(answer.header("Content-Range") == contentRange)
        if status != 416 {
            #expect(answer.response.body == Array(RequestBodies.bytes(300_000)[offset..<(offset + length)]))
            #expect(answer.header("Content-Length") == "\(length)")
        }
        // A range for another version of the file is ignored: the whole file.
        if status == 206 {
            #expect(client.get("/files/sub%20dir/report.csv", headers: ["Range": range, "If-Range": "\"old\""]).status == 200)
        }
    }

    @Test func pathsStayUnderTheRoot() throws {
        let (client, directory) = try Self.setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(client.get("/files/../secret.txt").status == 400)
        #expect(client.get("/files/sub%20dir/..%2F..%2Fsecret.txt").status == 400)
        #expect(client.get("/files/sub%20dir/report.csv%00.txt").status == 400)
        let escape = client.get("/files/escape")
        #expect(escape.status == 403 && !escape.text.contains("outside\n") && escape.text != "outside")
        #expect(client.get("/files/missing.txt").status == 404)
        #expect(client.get("/files/sub%20dir").status == 404, "a directory is not a download")
    }

    @Test func anOffloadSendsOnlyTheHeader() throws {
        let (nginx, directory) = try Self.setUp(offload: .nginx(internalPrefix: "/protected/"))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let redirected = nginx.get("/files/sub%20dir/report.csv")
        #expect(redirected.status == 200 && redirected.response.body.isEmpty)
        #expect(redirected.header("X-Accel-Redirect") == "/protected/sub%20dir/report.csv")
        #expect(redirected.header("Content-Type") == "text/csv; charset=utf-8")
        let (apache, other) = try Self.setUp(offload: .apache)
        defer { try? FileManager.default.removeItem(atPath: other) }
        let sent = apache.get("/files/sub%20dir/report.csv")
        let resolved = try #require(URL(fileURLWithPath: other + "/files/sub dir/report.csv").resolvingSymlinksInPath().path as String?)
        #expect(sent.header("X-Sendfile") == resolved)
        #expect(FileOffload("nginx:/protected/") == .nginx(internalPrefix: "/protected/"))
        #expect(FileOffload("apache") == .apache && FileOffload("none") == FileOffload.none)
        #expect(FileOffload("nginx:protected") == nil && FileOffload("nginx:/a/../b/") == nil && FileOffload("x") == nil)
        #expect(throws: FileDownloadsError.self) { try FileDownloads(root: other + "/nope") }
    }
}
