import Foundation
import Testing

/// The largest session cookies the app accepts (a Set-Cookie line of up to
/// 4096 bytes per channel) must get through each web server recipe both
/// ways: nginx's default 4k fastcgi_buffer_size answered 502 "upstream sent
/// too big header" to a 2.9 KiB value, and two such cookies come back in one
/// Cookie line, over nginx's and Apache's default 8k header line limit.
@Suite(.serialized) struct LargeCookiesThroughTheRecipes {
    enum Recipe: String, CaseIterable, CustomTestStringConvertible {
        case nginxFastCGI = "nginx FastCGI", nginxSCGI = "nginx SCGI", apacheFastCGI = "Apache FastCGI", apacheSCGI = "Apache SCGI"
        var testDescription: String { rawValue }
    }

    @Test(arguments: Recipe.allCases)
    func twoFullCookiesGoBothWays(recipe: Recipe) throws {
        let client: HTTPClient
        let keepAlive: AnyObject
        let appLog: () -> String
        let secret = ["--secret", SessionLabBehindNginx.secret]
        switch recipe {
        case .nginxFastCGI, .nginxSCGI:
            let stack = try SessionLabBehindNginx.Stack(scgi: recipe == .nginxSCGI)
            (client, keepAlive, appLog) = (stack.client, stack, { stack.app.output })
        case .apacheFastCGI, .apacheSCGI:
            let stack = try BehindApache.Stack(recipe == .apacheSCGI ? .scgi : .fcgi, binary: "session-lab", extra: secret)
            (client, keepAlive, appLog) = (stack.client, stack, { stack.app.output + stack.apache.errorLog })
        }
        defer { withExtendedLifetime(keepAlive) {} }
        let big = String(repeating: "x", count: 2950)
        let other = String(repeating: "y", count: 2950)
        let first = try client.get("/set/a/\(big)?clientside=1&permanent=1")
        #expect(first.status == 200, "\(first.status) \(first.text.prefix(200)) \(appLog().suffix(400))")
        let line = try #require(first.headers("Set-Cookie").first { $0.hasPrefix("gimlet-p=") })
        #expect(line.utf8.count > 3900 && line.utf8.count <= 4096, "a near-limit cookie: \(line.utf8.count) bytes")
        let second = try client.get("/set/b/\(other)?clientside=1&permanent=0")
        #expect(second.status == 200, "\(second.status) \(second.text.prefix(200))")
        // Both cookies come back in one Cookie line of over 8 KiB.
        let a = try client.get("/get/a")
        #expect(a.status == 200 && a.text == big, "\(a.status) \(a.text.prefix(200))")
        #expect(try client.get("/get/b").text == other)
        // Past the limit: the app's own clear error, not the web server's.
        let tooBig = try client.get("/set/c/\(String(repeating: "z", count: 3500))?clientside=1&permanent=1")
        #expect(tooBig.status == 500)
        #expect(appLog().contains("over the 4096 browsers keep"))
        let warnings = appLog().components(separatedBy: "upstream sent too big header").count - 1
        #expect(warnings == 1, "the large header block is pointed out once: \(warnings)")
    }
}
