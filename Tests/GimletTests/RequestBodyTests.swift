import Foundation
@testable import Gimlet
import GimletHTTP
import GimletTesting
import Synchronization
import Testing

/// Request bodies through the transports' exchange (``TestClient``): in
/// memory, spooled to an unnamed file, streamed to the handler; their
/// limits; and a body that ends early.
@Suite struct RequestBodies {
    /// A client whose bodies over 1000 bytes are spooled to `directory`.
    static func client(_ router: Router, directory: String, maxBytes: Int = 100_000) -> TestClient {
        let client = TestClient(router)
        client.bodyLimits = BodyLimits(maxBytes: maxBytes, memoryBytes: 1000, temporaryDirectory: directory)
        return client
    }

    static func bytes(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "gimlet-bodies-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    /// What the handler saw of its body.
    static func describe(_ body: RequestBody) -> String {
        "memory=\(body.bytes?.count ?? -1) file=\(body.file?.count ?? -1)"
    }

    @Test func aSmallBodyIsInMemoryALargeOneInAnUnnamedFile() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listed = Mutex<[String]>([])
        var router = Router()
        router.post("/body") { request in
            listed.withLock { $0 = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? ["?"] }
            let all = try request.body.collect(upTo: 1 << 20)
            var chunked: [UInt8] = []
            try request.body.forEachChunk { chunked += $0 }
            guard chunked == all, all == Self.bytes(all.count) else { return .text("bytes differ", status: .internalServerError) }
            return .text(Self.describe(request.body))
        }
        let client = Self.client(router, directory: directory)
        #expect(client.request("POST", "/body", body: Self.bytes(0)).text == "memory=0 file=-1")
        #expect(client.request("POST", "/body", body: Self.bytes(1000)).text == "memory=1000 file=-1")
        #expect(client.request("POST", "/body", body: Self.bytes(1001)).text == "memory=-1 file=1001")
        #expect(client.request("POST", "/body", body: Self.bytes(99_999)).text == "memory=-1 file=99999")
        // The spooled file never had a name in the directory, during or after the request.
        #expect(listed.withLock { $0 }.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func aSpooledBodyCanBeKeptUnderAName() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var router = Router()
        router.put("/files/:name") { request in
            let file = try request.body.spool()
            try file.keep(at: directory + "/" + (request.parameters["name"] ?? "x"))
            return .text("kept \(file.count)", status: .created)
        }
        let client = Self.client(router, directory: directory)
        #expect(client.request("PUT", "/files/big", body: Self.bytes(5000)).text == "kept 5000")
        #expect(client.request("PUT", "/files/small", body: Self.bytes(10)).text == "kept 10")
        #expect(FileManager.default.contents(atPath: directory + "/big") == Data(Self.bytes(5000)))
        #expect(FileManager.default.contents(atPath: directory + "/small") == Data(Self.bytes(10)))
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/big")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A name already taken is the handler's error: a logged 500, the old file intact.
        #expect(client.request("PUT", "/files/big", body: Self.bytes(7)).status == 500)
        #expect(FileManager.default.contents(atPath: directory + "/big")?.count == 5000)
    }

    @Test func overTheLimitIs413WithOrWithoutALength() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let handled = Atomic<Int>(0)
        var router = Router()
        router.post("/body") { request in
            handled.add(1, ordering: .relaxed)
            return .text(Self.describe(request.body))
        }
        let client = Self.client(router, directory: directory, maxBytes: 5000)
        #expect(client.request("POST", "/body", body: Self.bytes(5000)).text == "memory=-1 file=5000")
        let announced = client.request("POST", "/body", body: Self.bytes(5001))
        #expect(announced.status == 413)
        #expect(announced.text == "request body is larger than 5000 bytes")
        // No CONTENT_LENGTH (nginx with request buffering off, chunked): counted as it comes.
        client.environ["CONTENT_LENGTH"] = ""
        #expect(client.request("POST", "/body", body: Self.bytes(5000)).text == "memory=-1 file=5000")
        let unannounced = client.request("POST", "/body", body: Self.bytes(70_000))
        #expect(unannounced.status == 413)
        #expect(handled.load(ordering: .relaxed) == 2)
    }

    /// Forms and JSON are parsed in memory: over --body-buffer they are 413, not spooled.
    @Test(arguments: ["application/x-www-form-urlencoded", "application/json", "application/problem+json; charset=utf-8"])
    func formsAndJSONMustFitInMemory(contentType: String) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var router = Router()
        router.post("/form") { request in .text("\(request.form["a"]?.count ?? -1)") }
        let client = Self.client(router, directory: directory)
        let fits = Array("a=".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 998)
        #expect(client.request("POST", "/form", body: fits, contentType: contentType).status == 200)
        let over = client.request("POST", "/form", body: fits + [UInt8(ascii: "x")], contentType: contentType)
        #expect(over.status == 413)
        #expect(over.text.contains("a form or JSON body is read into memory: at most 1000 bytes"), "\(over.text)")
        client.environ["CONTENT_LENGTH"] = ""
        #expect(client.request("POST", "/form", body: fits + [UInt8(ascii: "x")], contentType: contentType).status == 413)
    }

    @Test func aStreamedBodyReachesTheHandlerInChunksAndIsNeverSpooled() async throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var router = Router()
        router.post("/async", options: .streamBody) { request async throws -> Response in
            var chunks = 0
            var received: [UInt8] = []
            for try await chunk in request.body.chunks {
                chunks += 1
                received += chunk
            }
            guard received == Self.bytes(received.count) else { return .text("bytes differ", status: .internalServerError) }
            return .text("\(received.count) in \(chunks) chunks; \(Self.describe(request.body))")
        }
        router.post("/sync", options: .streamBody) { request in
            var count = 0
            try request.body.forEachChunk { count += $0.count }
            return .text("\(count); \(Self.describe(request.body))")
        }
        router.post("/twice", options: .streamBody) { request in
            try request.body.forEachChunk { _ in }
            try request.body.forEachChunk { _ in }
            return .text("read twice")
        }
        router.post("/unread", options: .streamBody) { _ in .text("not read") }
        let client = Self.client(router, directory: directory, maxBytes: 1 << 20)
        #expect(await client.request("POST", "/async", body: Self.bytes(200_000)).text
            == "200000 in 4 chunks; memory=-1 file=-1")
        #expect(await client.request("POST", "/sync", body: Self.bytes(200_000)).text == "200000; memory=-1 file=-1")
        #expect(await client.request("POST", "/sync", body: []).text == "0; memory=-1 file=-1")
        #expect(await client.request("POST", "/twice", body: Self.bytes(10)).status == 500)
        #expect(await client.request("POST", "/unread", body: Self.bytes(200_000)).text == "not read")
        // The limit holds for a streamed body too, and the handler sees it as a 413.
        client.environ["CONTENT_LENGTH"] = ""
        let over = await client.request("POST", "/sync", body: Self.bytes((1 << 20) + 1))
        #expect(over.status == 413)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// The client goes away mid-upload: no answer, nothing of the session stored.
    @Test(arguments: [false, true])
    func aBodyThatEndsEarlyGetsNoAnswerAndStoresNothing(streamed: Bool) throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backend = MemoryBackend()
        let configuration = try SessionConfiguration(secrets: [Lab.secret], backend: backend)
        let cancellations = Mutex<[String]>([])
        var router = Router()
        router.use(try SessionMiddleware(configuration))
        router.get("/start") { request in
            try request.session.set("uploads", .int(0), clientside: false)
            return .text("ok")
        }
        router.post("/upload", options: streamed ? .streamBody : []) { request in
            try request.session.set("uploads", .int(1), clientside: false)
            var received = 0
            do {
                try request.body.forEachChunk { received += $0.count }
            } catch {
                cancellations.withLock { $0.append("\(request.cancellation.map { "\($0)" } ?? "none")") }
                throw error
            }
            return .text("\(received)")
        }
        router.get("/uploads") { request in .text("\(try request.session.get("uploads")?.intValue ?? -1)") }
        let client = Self.client(router, directory: directory)
        #expect(client.get("/start").text == "ok")
        // The announced length is never reached: the test channel ends the stream first.
        let cut = client.request("POST", "/upload", body: Self.bytes(3000), headers: ["Content-Length": "50000"])
        #expect(cut.status == 502, "no answer at all: \(cut.text)")
        #expect(client.get("/uploads").text == "0")
        #expect(cancellations.withLock { $0 } == (streamed ? ["the web server closed the connection"] : []))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        // The same worker path serves the next request.
        #expect(client.request("POST", "/upload", body: Self.bytes(3000)).text == "3000")
        #expect(client.get("/uploads").text == "1")
    }

    @Test func limitsThatCannotWorkAreSaidBeforeTheFirstRequest() throws {
        #expect(BodyLimits(temporaryDirectory: "/nonexistent/gimlet").problem()?.contains("/nonexistent/gimlet (--body-temp-dir)") == true)
        #expect(BodyLimits(maxBytes: -1).problem() != nil)
        #expect(BodyLimits(temporaryDirectory: NSTemporaryDirectory()).problem() == nil)
    }
}

/// Multipart forms through the exchange: parts as they arrive, the whole
/// form, files in unnamed temporary files, limits and malformed bodies as
/// 400 or 413, never a 5xx.
@Suite struct MultipartForms {
    static let boundary = "----gimletTEST"
    static let contentType = "multipart/form-data; boundary=" + boundary

    static func body(_ parts: [(name: String, filename: String?, bytes: [UInt8])]) -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            let filename = part.filename.map { "; filename=\"\($0)\"" } ?? ""
            let type = part.filename == nil ? "" : "\r\nContent-Type: application/octet-stream"
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\"\(filename)\(type)\r\n\r\n".utf8)
            body += part.bytes + Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }

    static func router() -> Router {
        var router = Router()
        router.post("/parts", options: .streamBody) { request in
            var lines: [String] = []
            try request.forEachPart(limits: MultipartLimits(maxParts: 10, maxFieldBytes: 100)) { part in
                let bytes = try part.file.map { try $0.read(at: 0, maximum: $0.count) } ?? part.bytes ?? []
                lines.append("\(part.name) \(part.filename ?? "-") \(part.size) \(bytes == RequestBodies.bytes(bytes.count))")
            }
            return .text(lines.joined(separator: "\n"))
        }
        router.post("/form") { request in
            let form = try request.multipartForm()
            return .text("\(form["title"] ?? "-") \(form.values("tag")) \(form.file("upload")?.size ?? -1) \(form.files.count)")
        }
        return router
    }

    @Test func partsArriveWholeStreamedOrNot() throws {
        let directory = try RequestBodies.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = RequestBodies.client(Self.router(), directory: directory, maxBytes: 1 << 20)
        let body = Self.body([
            (name: "title", filename: nil, bytes: Array("Hello".utf8)), (name: "tag", filename: nil, bytes: Array("a".utf8)),
            (name: "tag", filename: nil, bytes: Array("b".utf8)),
            (name: "upload", filename: "../../etc/passwd", bytes: RequestBodies.bytes(300_000)),
            (name: "empty", filename: "", bytes: []),
        ])
        let parts = client.request("POST", "/parts", body: body, contentType: Self.contentType)
        #expect(parts.text == "title - 5 false\ntag - 1 false\ntag - 1 false\nupload ../../etc/passwd 300000 true\nempty  0 true")
        #expect(client.request("POST", "/form", body: body, contentType: Self.contentType).text == #"Hello ["a", "b"] 300000 2"#)
        // The filename is data: nothing was written anywhere but unnamed files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test func limitsAnd415() throws {
        let directory = try RequestBodies.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = RequestBodies.client(Self.router(), directory: directory, maxBytes: 1 << 20)
        let long = client.request("POST", "/parts", body: Self.body([(name: "a", filename: nil, bytes: RequestBodies.bytes(101))]),
                                  contentType: Self.contentType)
        #expect(long.status == 413 && long.text == "a form field is longer than 100 bytes")
        let many = Self.body((0..<11).map { (name: "f\($0)", filename: nil, bytes: []) })
        #expect(client.request("POST", "/parts", body: many, contentType: Self.contentType).text == "more than 10 parts in the form")
        let notMultipart = client.request("POST", "/parts", body: Array("a=1".utf8), contentType: "application/x-www-form-urlencoded")
        #expect(notMultipart.status == 415)
    }

    /// A corpus of broken bodies, generated from a good one: each is a 400 or
    /// a 413, never a 5xx, and no file is left behind.
    @Test func twoHundredMalformedBodiesAre400Or413() throws {
        let directory = try RequestBodies.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = RequestBodies.client(Self.router(), directory: directory, maxBytes: 1 << 20)
        let corpus = MalformedMultipart.corpus(boundary: Self.boundary)
        #expect(corpus.count >= 200)
        var statuses: [Int: Int] = [:]
        for body in corpus {
            let answer = client.request("POST", "/parts", body: body, contentType: Self.contentType)
            statuses[answer.status, default: 0] += 1
            #expect(answer.status == 400 || answer.status == 413, "\(answer.status) \(answer.text) for \(String(decoding: body.prefix(120), as: UTF8.self))")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}

/// A file upload's form carries its CSRF token as a multipart text field.
@Suite struct MultipartCSRF {
    @Test func theTokenIsFoundInAMultipartFormWhichTheHandlerStillGets() throws {
        let configuration = try SessionConfiguration(secrets: [Lab.secret], backend: MemoryBackend())
        var router = Router()
        router.use(try SessionMiddleware(configuration))
        router.get("/") { request in .text(try request.session.csrfToken()) }
        for (path, options) in [("/attach", RouteOptions()), ("/attach-streamed", RouteOptions.streamBody)] {
            router.post(path, options: options) { request in
                try request.session.verifyCSRF(request)
                var files = 0
                try request.forEachPart { files += $0.file == nil ? 0 : 1 }
                return .text("\(try request.multipartForm()["note"] ?? "-") \(files)")
            }
        }
        let client = TestClient(router)
        let token = client.get("/").text
        let contentType = MultipartForms.contentType
        for path in ["/attach", "/attach-streamed"] {
            let body = MultipartForms.body([
                (name: "csrf_token", filename: nil, bytes: Array(token.utf8)), (name: "note", filename: nil, bytes: Array("n1".utf8)),
                (name: "file", filename: "a.png", bytes: RequestBodies.bytes(5000)),
            ])
            #expect(client.request("POST", path, body: body, contentType: contentType).text == "n1 1")
            let forged = MultipartForms.body([(name: "csrf_token", filename: nil, bytes: Array("0000".utf8))])
            #expect(client.request("POST", path, body: forged, contentType: contentType).status == 403)
            #expect(client.request("POST", path, body: MultipartForms.body([]), contentType: contentType).status == 403)
        }
    }
}
