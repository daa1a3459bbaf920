import Foundation
import Gimlet
import GimletTesting
import Testing

/// Cookies an attacker or a broken client may send: never a crash, never a 5xx.
@Suite struct HostileCookies {
    @Test func everyHostileCookieIsAFreshSession() throws {
        let lab = try Lab(encryptionKey: String(repeating: "cd", count: 32))
        lab.get("/set/a/1?clientside=1&permanent=1")
        lab.get("/set/b/2?clientside=1")
        let goodP = try #require(lab.client.cookies["gimlet-p"])
        let goodN = try #require(lab.client.cookies["gimlet-n"])
        var raw = Base64URLForTests.decode(goodP)
        raw[raw.count - 1] ^= 0x80
        let flippedMAC = Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let hostile: [(String, String)] = [
            ("gimlet-p", String(goodP.prefix(goodP.count / 2))),  // truncated
            ("gimlet-p", "Z" + goodP.dropFirst()),                 // wrong version byte
            ("gimlet-p", "%%%not-base64%%%"),
            ("gimlet-p", flippedMAC),
            ("gimlet-p", String(repeating: "A", count: 8000)),     // oversized
            ("gimlet-p", goodN),                                   // the other cookie's value
            ("gimlet-p", ""),
        ]
        for (name, value) in hostile {
            let client = TestClient(lab.client.responder)
            client.cookies = [name: value]
            for path in ["/get/a", "/len", "/set/c/3", "/id", "/counter", "/invalidate", "/regenerate"] {
                let response = client.get(path)
                #expect(response.status < 500, "\(path) with \(name)=\(value.prefix(24))… gave \(response.status)")
            }
            let fresh = TestClient(lab.client.responder)
            fresh.cookies = [name: value]
            #expect(fresh.get("/get/a").status == 404, "a bad cookie carries no data")
        }
    }

    @Test func quotedCookieValuesAreAccepted() throws {
        let lab = try Lab()
        lab.get("/set/a/1?clientside=1")
        let value = try #require(lab.client.cookies["gimlet-n"])
        let client = TestClient(lab.client.responder)
        client.cookies = ["gimlet-n": "\"" + value + "\""]
        #expect(client.get("/get/a").text == "1")
    }

    @Test func rawHeaderJunk() throws {
        let lab = try Lab()
        for header in ["gimlet-p", "gimlet-p=; gimlet-n=", ";;;;", "gimlet-p=\u{0}\u{1}", "gimlet-n=é", "=",
                       String(repeating: "gimlet-p=x; ", count: 500)] {
            let response = lab.client.request("GET", "/get/a", headers: ["Cookie": header])
            #expect(response.status == 404, "Cookie: \(header.prefix(30))")
        }
    }
}
