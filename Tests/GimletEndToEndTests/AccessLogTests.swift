import Foundation
import Testing

/// `--access-log`, `--log-format` and the request id, through real nginx
/// with the recipe's `fastcgi_param HTTP_X_REQUEST_ID $request_id`.
@Suite(.serialized) struct AccessLogBehindNginx {
    typealias Stack = SessionLabBehindNginx.Stack

    /// The fields of one access-log line: logfmt (`key=value`, values
    /// quoted with `\"` and `\\` escapes where needed) or one JSON object.
    static func fields(_ line: Substring, json: Bool) throws -> [String: String] {
        if json {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            return object.mapValues { "\($0)" }
        }
        var fields: [String: String] = [:]
        var rest = line[...]
        while !rest.isEmpty {
            let equals = try #require(rest.firstIndex(of: "="), "no key=value in \(line)")
            let key = String(rest[..<equals])
            #expect(!key.contains(" ") && !key.isEmpty, "\(line)")
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first, character != "\"" {
                    if character == "\\" { rest = rest.dropFirst() }
                    value.append(try #require(rest.first, "unterminated quote in \(line)"))
                    rest = rest.dropFirst()
                }
                #expect(rest.first == "\"", "unterminated quote in \(line)")
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            #expect(rest.isEmpty || rest.first == " ", "fields are separated by one space: \(line)")
            rest = rest.drop { $0 == " " }
            fields[key] = value
        }
        return fields
    }

    static func lines(_ path: String) -> [Substring] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Each request, whatever answers it (a route, the router's 404, the
    /// transport's 413), gets one well-formed line with its route, status,
    /// bytes and times, under the id nginx chose, which the response
    /// carries and nginx's own access log shows too. With `json`, every
    /// line the app logs is a JSON object.
    @Test(arguments: ["text", "json"]) func oneWellFormedLinePerRequestUnderNginxsID(format: String) throws {
        let logs = try TemporaryDirectory("gimlet-access")
        let accessLog = logs.file("access.log")
        let json = format == "json"
        let stack = try Stack(["--access-log", accessLog, "--log-format", format, "--max-body", "1000"])
        // Lines are written in batches, within about a second.
        #expect(waitUntil(seconds: 5) { !Self.lines(accessLog).isEmpty }, "the readiness probe's request is logged too")

        let hello = try stack.client.get("/hello", headers: ["X-Request-Id": "chosen-by-the-client"])
        let set = try stack.client.get("/set/color/blue?token=private-token")
        let missing = try stack.client.get("/no/such/route")
        let tooLarge = try stack.client.request("POST", "/hello", body: Array(repeating: 0x61, count: 2000))
        let answers = [hello, set, missing, tooLarge]
        #expect(answers.map(\.status) == [200, 200, 404, 413])
        let ids = answers.map { $0.header("X-Request-Id") ?? "" }
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy(\.isHexDigit), "nginx's $request_id: \(ids)")
        }
        #expect(Set(ids).count == 4)
        #expect(!ids.contains("chosen-by-the-client"), "the recipe replaces the client's header")

        func ours() -> [Substring] { Self.lines(accessLog).filter { line in ids.contains { line.contains($0) } } }
        #expect(waitUntil(seconds: 5) { ours().count == 4 }, "\(Self.lines(accessLog))")
        let byID = try Dictionary(uniqueKeysWithValues: ours().map { line in
            let fields = try Self.fields(line, json: json)
            return (fields["request_id"] ?? "", fields)
        })
        #expect(Set(byID.keys) == Set(ids))
        let pid = String(stack.app.pid)
        for (answer, id) in zip(answers, ids) {
            let fields = try #require(byID[id])
            #expect(fields["pid"] == pid)
            #expect(fields["status"] == String(answer.status))
            #expect(Int(fields["bytes"] ?? "") ?? 0 > answer.body.count, "headers and body: \(fields)")
            let time = try #require(fields["time"])
            #expect(time.count == 24 && time.hasSuffix("Z") && time.contains("T"), "ISO 8601 UTC with ms: \(time)")
            #expect(Double(fields["duration_ms"] ?? "") != nil, "\(fields)")
            #expect(Double(fields["backend_ms"] ?? "") != nil, "\(fields)")
        }
        let setLine = try #require(byID[ids[1]])
        #expect(setLine["method"] == "GET")
        #expect(setLine["path"] == "/set/color/blue", "no query string by default")
        #expect(setLine["query"] == nil)
        #expect(setLine["route"] == "/set/:key/:value")
        #expect(setLine["backend_round_trips"] == "1", "the commit: \(setLine)")
        #expect(byID[ids[0]]?["backend_round_trips"] == "0")
        #expect(byID[ids[2]]?["route"] == "-")
        #expect(byID[ids[3]]?["method"] == "POST")
        #expect(byID[ids[3]]?["route"] == "-", "answered by the transport")

        // nginx's own log names the same requests.
        let nginxLog = (try? String(contentsOfFile: stack.nginx.directory.file("access-log.txt"), encoding: .utf8)) ?? ""
        for id in ids { #expect(nginxLog.contains("request_id=\(id)"), "\(nginxLog)") }

        let appLog = stack.app.output.split(separator: "\n")
        #expect(appLog.contains { $0.contains("serving FastCGI") })
        if json {
            for line in appLog {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["level"] != nil && object?["message"] != nil && object?["time"] != nil, "\(line)")
            }
        }
    }

    /// Under `--workers`, logrotate's way: the file is moved, SIGUSR1 to
    /// the supervisor, and every worker writes to a new file at the path
    /// from then on; the lines before stay in the moved file.
    @Test func sigusr1ReopensTheAccessLogInEveryWorker() throws {
        let logs = try TemporaryDirectory("gimlet-access")
        let accessLog = logs.file("access.log")
        let stack = try Stack(["--access-log", accessLog, "--workers", "2", "--threads", "2",
                               "--access-log-query", "yes"])
        _ = waitUntil(seconds: 10) { childPIDs(of: stack.app.pid).count == 2 }
        let first = try stack.client.parallelGets(count: 20, connections: 4) { "/set/k/v?n=\($0)" }
        #expect(first.allSatisfy { $0.status == 200 })
        #expect(waitUntil(seconds: 5) { Self.lines(accessLog).filter { $0.contains("path=/set/k/v") }.count == 20 })
        try FileManager.default.moveItem(atPath: accessLog, toPath: accessLog + ".1")
        stack.app.send(SIGUSR1)
        #expect(waitUntil(seconds: 5) {
            stack.app.output.components(separatedBy: "SIGUSR1: log files reopened").count - 1 == 2
        }, "both workers reopened: \(stack.app.output)")
        let second = try stack.client.parallelGets(count: 30, connections: 4) { "/set/k/v?n=\($0)" }
        #expect(second.allSatisfy { $0.status == 200 })
        #expect(waitUntil(seconds: 5) { Self.lines(accessLog).count == 30 }, "\(Self.lines(accessLog))")
        let pids = Set(try Self.lines(accessLog).map { try Self.fields($0, json: false)["pid"] ?? "" })
        let workers = Set(childPIDs(of: stack.app.pid).map(String.init))
        #expect(pids.isSubset(of: workers), "\(pids) \(workers)")
        #expect(Self.lines(accessLog).allSatisfy { $0.contains("query=\"n=") }, "--access-log-query: \(Self.lines(accessLog))")
        #expect(Self.lines(accessLog + ".1").filter { $0.contains("path=/set/k/v") }.count == 20)
    }
}

/// Refused CSRF checks, cross-site and cross-origin requests and forged
/// cookies, through nginx: logged with the request's id, at most three
/// lines per kind per minute from one client however many arrive (another
/// client's are logged all the same: SecurityBehindNginx).
@Suite(.serialized) struct SecurityEventsBehindNginx {
    @Test func refusalsAreLoggedWithTheRequestIDAndRateLimited() throws {
        let stack = try SessionLabBehindNginx.Stack(["--ping-path", "/-/ping"])
        var ids = Set<String>()
        for _ in 0..<25 {
            let answer = try stack.client.get("/get/k", headers: ["Cookie": "gimlet-n=forged.value"])
            #expect(answer.status == 404, "a forged cookie is no session, not an error")
            ids.insert(try #require(answer.header("X-Request-Id")))
        }
        #expect(try stack.client.get("/csrf").status == 200)
        for _ in 0..<12 {
            let answer = try stack.client.request("POST", "/csrf_check", body: Array("csrf_token=wrong".utf8),
                                                  headers: ["Content-Type": "application/x-www-form-urlencoded"])
            #expect(answer.status == 403)
            ids.insert(try #require(answer.header("X-Request-Id")))
        }
        let crossOrigin = try stack.client.request("POST", "/csrf_check", body: [],
                                                   headers: ["Origin": "https://evil.example"])
        #expect(crossOrigin.status == 403)
        let crossSite = try stack.client.request("POST", "/csrf_check", body: [], headers: ["Sec-Fetch-Site": "cross-site"])
        #expect(crossSite.status == 403)

        let lines = stack.app.output.split(separator: "\n")
        func events(_ kind: String) -> [Substring] { lines.filter { $0.contains("security_event=\(kind)") } }
        #expect(events("rejected_cookie").count == 3, "25 forged cookies from one client, 3 lines: \(events("rejected_cookie"))")
        #expect(events("rejected_cookie").last?.contains("rate_limited=") == true)
        #expect(events("csrf_token").count == 3)
        #expect(events("cross_origin").count == 1)
        #expect(events("cross_origin").first?.contains("origin=https://evil.example") == true)
        #expect(events("cross_site").count == 1)
        for line in events("rejected_cookie") + events("csrf_token") {
            #expect(line.contains(" warning "), "\(line)")
            let id = try #require(line.firstRange(of: "request_id=").map { line[$0.upperBound...].prefix(32) })
            #expect(ids.contains(String(id)), "\(line)")
        }
        let crossOriginID = try #require(crossOrigin.header("X-Request-Id"))
        #expect(events("cross_origin").first?.contains("request_id=\(crossOriginID)") == true)
    }
}
