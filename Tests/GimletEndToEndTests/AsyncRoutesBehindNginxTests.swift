import Foundation
import Testing

/// session-lab's async routes behind a real nginx, over FastCGI and SCGI.
@Suite(.serialized) struct AsyncRoutesBehindNginx {
    enum Transport: String, CaseIterable, CustomTestStringConvertible {
        case fastcgi, scgi
        var testDescription: String { rawValue }
    }

    @Test(arguments: Transport.allCases)
    func asyncHandlersUseTheSessionAsSyncOnesDo(transport: Transport) throws {
        let stack = try SessionLabBehindNginx.Stack(["--threads", "4"], scgi: transport == .scgi)
        #expect(try stack.client.get("/async/set/fruit/apple").text == "ok")
        #expect(try stack.client.get("/async/get/fruit").text == "apple")
        #expect(try stack.client.get("/get/fruit").text == "apple", "a sync route sees what an async one stored")
        #expect(try stack.client.get("/set/veg/leek").text == "ok")
        #expect(try stack.client.get("/async/get/veg").text == "leek")
        #expect(try stack.client.get("/async/get/nothing").status == 404)
        #expect(try stack.client.request("HEAD", "/async/get/fruit").status == 200, "HEAD on an async GET route")

        // Read-modify-write from async handlers: checked at commit, re-run on a conflict.
        let cookie = stack.cookieHeader
        for round in 0..<4 {
            let results = try stack.client.parallelGets(count: 16, connections: 16, headers: ["Cookie": cookie]) {
                "/async/counter?round=\(round)&n=\($0)"
            }
            #expect(results.allSatisfy { $0.status == 200 }, "\(Set(results.map(\.status)))")
        }
        let counted = try stack.client.get("/get/counter").text
        #expect(counted == "64", "lost increments: \(counted)")
        // Sync and async requests at once, on four threads.
        let mixed = try stack.client.parallelGets(count: 64, connections: 16, headers: ["Cookie": cookie]) {
            $0 % 2 == 0 ? "/async/get/fruit" : "/get/fruit"
        }
        #expect(mixed.allSatisfy { $0.status == 200 && $0.body == "apple" })
    }
}
